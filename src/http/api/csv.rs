//! CSV downloads of report rows: a header row, then one line per row, fields quoted
//! when they hold a comma, a quote or a line break (RFC 4180).

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// A row of a CSV report.
pub trait CsvRow {
    /// The column names.
    const HEADER: &'static [&'static str];
    /// The row's fields, in the header's order.
    fn cells(&self) -> Vec<String>;
}

fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The rows as CSV text.
pub fn to_csv<T: CsvRow>(rows: &[T]) -> String {
    let mut out = T::HEADER.join(",");
    out.push_str("\r\n");
    for row in rows {
        let cells: Vec<String> = row.cells().iter().map(|c| field(c)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The rows as a CSV attachment named `filename`.
pub fn csv_response<T: CsvRow>(filename: &str, rows: &[T]) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "private, no-cache".to_owned()),
        ],
        to_csv(rows),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Row(&'static str, i64);
    impl CsvRow for Row {
        const HEADER: &'static [&'static str] = &["name", "n"];
        fn cells(&self) -> Vec<String> {
            vec![self.0.to_owned(), self.1.to_string()]
        }
    }

    #[test]
    fn fields_are_quoted_when_needed() {
        let text = to_csv(&[Row("plain", 1), Row("a, \"b\"", 2)]);
        assert_eq!(text, "name,n\r\nplain,1\r\n\"a, \"\"b\"\"\",2\r\n");
    }
}
