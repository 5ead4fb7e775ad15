//! `tierflow crm load FILE`: reads a [`CrmFile`] (the API's shapes) and
//! loads it into Redis through [`Store::load`], which validates the whole
//! file first and writes all of it or nothing. Every error names the file,
//! and the field when there is one
//! (`crm.json: customers[3].phones[0]: must be an E.164 number ...`).

use super::store::{CrmError, LoadSummary, Store, StoreOptions};
use super::tls::RedisTls;
use anyhow::{Context, anyhow};
use std::path::Path;
use tierflow_api::model::CrmFile;

/// Parses `text` as a CRM file; the error names the field path and the
/// line and column.
pub fn parse_file(text: &str) -> anyhow::Result<CrmFile> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            anyhow!("{inner}")
        } else {
            anyhow!("{path}: {inner}")
        }
    })
}

/// Loads the CRM file at `path` into the Redis at `redis_url`.
pub async fn load_file(redis_url: &str, path: &Path) -> anyhow::Result<LoadSummary> {
    load_file_with(redis_url, None, path).await
}

/// [`load_file`] with the trust and client certificate of a `rediss://`
/// Redis. Errors show the URL without its password.
pub async fn load_file_with(
    redis_url: &str,
    tls: Option<&RedisTls>,
    path: &Path,
) -> anyhow::Result<LoadSummary> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {shown}"))?;
    let file = parse_file(&text).with_context(|| format!("{shown}: not a valid CRM file"))?;
    let url = super::redacted(redis_url);
    let store = Store::connect_with(
        redis_url,
        &StoreOptions {
            tls: tls.cloned(),
            ..StoreOptions::default()
        },
    )
    .await
    .with_context(|| format!("cannot connect to Redis at {url}"))?;
    store.load(&file).await.map_err(|e| match e {
        CrmError::Invalid(f) => anyhow!("{shown}: {}: {}", f.field, f.reason),
        CrmError::Conflict(m) => anyhow!("{shown}: {m}"),
        other => anyhow!("{shown}: cannot load into Redis at {url}: {other}"),
    })
}
