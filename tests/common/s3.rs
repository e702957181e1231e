//! A real S3 API on loopback (moto, started by scripts/s3.sh) for the tile store tests;
//! `PLANSCAPE_TEST_S3_ENDPOINT` points elsewhere. Any credentials work with moto: the
//! test script exports dummy ones.

use std::collections::BTreeSet;

use aws_sdk_s3::Client;

use super::unique;

/// The S3 endpoint of the tests.
pub fn endpoint() -> String {
    std::env::var("PLANSCAPE_TEST_S3_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:54330".to_owned())
}

/// Fails with directions when the environment has no AWS credentials.
fn require_credentials() {
    assert!(
        std::env::var("AWS_ACCESS_KEY_ID").is_ok(),
        "S3 tests need scripts/s3.sh running and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY set \
         (any value works with moto): run scripts/test.sh"
    );
}

/// An S3 client for `endpoint` (path-style, us-east-1).
pub async fn s3_at(endpoint: &str) -> Client {
    require_credentials();
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .load()
        .await;
    let conf = aws_sdk_s3::config::Builder::from(&shared)
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    Client::from_conf(conf)
}

/// A new bucket with a unique name.
pub async fn new_bucket(s3: &Client) -> String {
    let bucket = unique("tiles").replace('_', "-");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket (is scripts/s3.sh running?)");
    bucket
}

/// Keys under `prefix/`, with the prefix stripped.
pub async fn keys(s3: &Client, bucket: &str, prefix: &str) -> BTreeSet<String> {
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(format!("{prefix}/"))
        .into_paginator()
        .send();
    let mut out = BTreeSet::new();
    while let Some(page) = pages.next().await {
        for o in page.expect("list").contents() {
            let key = o.key().expect("key");
            out.insert(key[prefix.len() + 1..].to_owned());
        }
    }
    out
}
