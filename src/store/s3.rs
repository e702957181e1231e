//! The S3 store (aws-sdk-s3). Credentials come from the standard AWS chain (environment,
//! profile, web identity, ECS task role, instance metadata), never from the config file.
//! Transient failures (throttling, 5xx, timeouts, dropped connections) are retried by the
//! SDK's standard retry mode with exponential backoff and jitter, up to five attempts.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use bytes::Bytes;

use super::{ObjectMeta, StoreError, StoredTile};
use crate::config::StoreConfig;

/// Attempts per request, the first included.
const MAX_ATTEMPTS: u32 = 5;

/// A tile store in an S3 bucket.
#[derive(Debug)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
}

/// A one-line message: the service's error code and message, or the client-side chain
/// of causes (connection refused, timeout, ...).
fn s3_error<E, R>(operation: &'static str, key: &str, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = match &e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            match (err.code(), err.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_owned(),
                _ => err.to_string(),
            }
        }
        other => {
            let mut message = other.to_string();
            let mut cause = std::error::Error::source(other);
            while let Some(c) = cause {
                message.push_str(": ");
                message.push_str(&c.to_string());
                cause = c.source();
            }
            message
        }
    };
    StoreError::S3 {
        operation,
        key: key.to_owned(),
        message,
    }
}

fn plain_error(operation: &'static str, key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::S3 {
        operation,
        key: key.to_owned(),
        message: e.to_string(),
    }
}

impl S3Store {
    /// A client for `bucket`/`prefix` with the endpoint, region and addressing style of
    /// `config`.
    pub async fn new(bucket: String, prefix: String, config: &StoreConfig) -> Self {
        let region = RegionProviderChain::first_try(config.region.clone().map(Region::new))
            .or_default_provider()
            .or_else(Region::new("us-west-2"));
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .build(),
            )
            .load()
            .await;
        let mut builder =
            aws_sdk_s3::config::Builder::from(&shared).force_path_style(config.path_style);
        if let Some(endpoint) = &config.endpoint {
            // S3-compatible services vary in their support of the newer default checksums.
            builder = builder
                .endpoint_url(endpoint)
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        Self {
            client: Client::from_conf(builder.build()),
            bucket,
            prefix,
        }
    }

    fn full_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    pub(super) async fn check(&self) -> Result<(), StoreError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| s3_error("HeadBucket", &self.bucket, e))
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let full = self.full_key(key);
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(out) => {
                let data = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| plain_error("GetObject", &full, e))?;
                Ok(Some(data.into_bytes()))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(s3_error("GetObject", &full, e)),
        }
    }

    pub(super) async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        let full = self.full_key(key);
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectMeta {
                content_type: out.content_type().unwrap_or_default().to_owned(),
                content_encoding: out.content_encoding().map(str::to_owned),
                cache_control: out.cache_control().unwrap_or_default().to_owned(),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(s3_error("HeadObject", &full, e)),
        }
    }

    pub(super) async fn put(&self, key: &str, tile: &StoredTile) -> Result<(), StoreError> {
        let full = self.full_key(key);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .body(ByteStream::from(tile.body.clone()))
            .content_type(&tile.meta.content_type)
            .set_content_encoding(tile.meta.content_encoding.clone())
            .cache_control(&tile.meta.cache_control)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| s3_error("PutObject", &full, e))
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let full = self.full_key(prefix);
        let strip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| s3_error("ListObjectsV2", &full, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter_map(|k| k.get(strip..))
                    .map(str::to_owned),
            );
        }
        Ok(keys)
    }

    pub(super) async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(self.full_key(k)).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| plain_error("DeleteObjects", &self.bucket, e))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| plain_error("DeleteObjects", &self.bucket, e))?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| s3_error("DeleteObjects", &self.bucket, e))?;
            if let Some(failed) = out.errors().first() {
                return Err(StoreError::S3 {
                    operation: "DeleteObjects",
                    key: failed.key().unwrap_or_default().to_owned(),
                    message: failed.message().unwrap_or("failed").to_owned(),
                });
            }
        }
        Ok(())
    }
}
