//! Registering an imported layer in the configuration file: the name checked before any
//! work, then a `[layers.NAME]` section appended, the rest of the file (comments, order,
//! layout) kept as the user wrote it.

use std::path::Path;

use toml_edit::{DocumentMut, Item, Table};

use super::ImportError;
use crate::config::Config;

/// Refuses a layer name that is not a valid name, or that the configuration file
/// `config` (when given and present) already has.
pub fn check_new_layer(config: Option<&Path>, layer: &str) -> Result<(), ImportError> {
    if !layer
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        || layer.is_empty()
    {
        return Err(ImportError::Invalid(format!(
            "`{layer}` is not a valid layer name"
        )));
    }
    if let Some(config) = config
        && config.exists()
    {
        let existing = Config::load(Some(config), |_| None)
            .map_err(|e| ImportError::Invalid(e.to_string()))?;
        if existing.layers.contains_key(layer) {
            return Err(ImportError::Invalid(format!(
                "layer `{layer}` already exists in {}",
                config.display()
            )));
        }
    }
    Ok(())
}

/// Appends `[layers.NAME]` with `table` to the configuration file (created when missing).
/// The file is replaced only once the new text is completely written.
pub fn append_layer(config: &Path, name: &str, mut table: Table) -> Result<(), ImportError> {
    let io = |e| ImportError::Io(config.to_owned(), e);
    let text = match std::fs::read_to_string(config) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(e)),
    };
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| ImportError::Invalid(format!("{}: {e}", config.display())))?;
    let trailing = doc.trailing().as_str().unwrap_or("").to_owned();
    doc.set_trailing("");
    let layers = doc
        .entry("layers")
        .or_insert_with(|| {
            let mut layers = Table::new();
            layers.set_implicit(true);
            Item::Table(layers)
        })
        .as_table_mut()
        .ok_or_else(|| {
            ImportError::Invalid(format!(
                "`layers` in {} is not a table of sections",
                config.display()
            ))
        })?;
    // After every section the file has, one blank line before it. Comments at the end of
    // the file (the document's trailing text) stay before the new section.
    table.set_position(Some(isize::MAX));
    table.decor_mut().set_prefix(format!("{trailing}\n"));
    layers.insert(name, Item::Table(table));

    let partial = config.with_extension("toml.partial");
    std::fs::write(&partial, doc.to_string()).map_err(io)?;
    let replaced = match std::fs::metadata(config) {
        Ok(meta) => std::fs::set_permissions(&partial, meta.permissions()),
        Err(_) => Ok(()),
    }
    .and_then(|()| std::fs::rename(&partial, config));
    if let Err(e) = replaced {
        let _ = std::fs::remove_file(&partial);
        return Err(io(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_a_section_keeping_the_file_as_written() {
        let dir = std::env::temp_dir().join(format!("register-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("planscape.toml");
        let before = "# my server\nlisten = \"0.0.0.0:8080\"  # public\n\n\
                      [layers.roads]\ntype = \"vector\"\ntable = \"roads\"\n\n\
                      [cache]\nsize_mb = 64\n";
        std::fs::write(&path, before).expect("write");
        let mut table = Table::new();
        table["type"] = toml_edit::value("raster");
        table["range"] = toml_edit::value(toml_edit::Array::from_iter([25.0, 752.0]));
        append_layer(&path, "fuel", table).expect("append");
        let after = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            after,
            format!("{before}\n[layers.fuel]\ntype = \"raster\"\nrange = [25.0, 752.0]\n")
        );
        let parsed: toml::Table = toml::from_str(&after).expect("valid TOML");
        assert_eq!(parsed["layers"]["fuel"]["range"][1].as_float(), Some(752.0));
        assert_eq!(parsed["layers"]["roads"]["table"].as_str(), Some("roads"));

        // No newline at the end of the file.
        std::fs::write(&path, "listen = \"0.0.0.0:8080\"").expect("write");
        append_layer(&path, "fuel", Table::new()).expect("append");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "listen = \"0.0.0.0:8080\"\n\n[layers.fuel]\n"
        );

        // A file of comments only: the comments stay first.
        std::fs::write(&path, "# my layers\n# more\n").expect("write");
        append_layer(&path, "fuel", Table::new()).expect("append");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "# my layers\n# more\n\n[layers.fuel]\n"
        );

        std::fs::remove_file(&path).expect("remove");
        append_layer(&path, "fuel", Table::new()).expect("create");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "\n[layers.fuel]\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
