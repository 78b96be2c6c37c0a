//! Plain HTTP GETs of static resources (the tiles of `ledger mirror`).
//!
//! Owns: one HTTP/1.1 client and the meaning of its answers (200: the
//! bytes, 404: nothing there, anything else: an error naming the status
//! and the server's text). Must not: know what the resources mean.

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::client::source_chain;
use crate::error::{CliError, CliResult};

/// A client for one prefix (`http://host:port/tlog/<log>`).
#[derive(Clone)]
pub struct Fetcher {
    client: Client<HttpConnector, Empty<Bytes>>,
    prefix: String,
}

impl Fetcher {
    /// A client of `prefix`; only `http://` (ledgerd's HTTP listener).
    pub fn new(prefix: &str) -> CliResult<Self> {
        if !prefix.starts_with("http://") {
            return Err(CliError::Usage(format!(
                "{prefix}: give the tiles' prefix as http://HOST:PORT/tlog/LOG (ledgerd's HTTP listener; https is not supported)"
            )));
        }
        let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(32).build_http();
        Ok(Self { client, prefix: prefix.trim_end_matches('/').to_owned() })
    }

    /// The bytes at `path` under the prefix; `None` on 404.
    pub async fn get(&self, path: &str) -> CliResult<Option<Vec<u8>>> {
        let url = format!("{}/{path}", self.prefix);
        let fail = |detail: String| CliError::Fetch { url: url.clone(), detail };
        let uri: hyper::Uri = url.parse().map_err(|e| fail(format!("not a URL: {e}")))?;
        let resp = self.client.get(uri).await.map_err(|e| fail(source_chain(&e)))?;
        let status = resp.status();
        let body = resp.into_body().collect().await.map_err(|e| fail(e.to_string()))?.to_bytes();
        match status.as_u16() {
            200 => Ok(Some(body.to_vec())),
            404 => Ok(None),
            _ => Err(fail(format!("{status}: {}", String::from_utf8_lossy(&body).trim()))),
        }
    }
}
