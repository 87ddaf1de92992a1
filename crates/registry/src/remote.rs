//! Distribution API calls: manifests, blobs (HEAD, streamed GET, streamed or chunked upload,
//! cross-repository mount), tags and deletion.

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Body, Response, StatusCode};
use tokio::io::AsyncReadExt;
use tokio_util::io::{ReaderStream, StreamReader};

use crate::client::{redact_url, status_error, Scope};
use crate::files::BlobReader;
use crate::layout::MANIFEST_LIMIT;
use crate::manifest::{Descriptor, MANIFEST_ACCEPT};
use crate::retry::exhausted;
use crate::store::FetchedManifest;
use crate::{Digest, Reference, RegistryClient, RegistryError};

/// Re-opens a blob's content at an offset, for every upload attempt.
pub(crate) type OpenBlob = Arc<
    dyn Fn(u64) -> futures::future::BoxFuture<'static, Result<BlobReader, RegistryError>>
        + Send
        + Sync,
>;

/// Called with the bytes sent so far for one blob.
pub(crate) type OnBytes = Arc<dyn Fn(u64) + Send + Sync>;

/// How blobs are uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UploadMode {
    /// One streamed `PUT` per blob (works everywhere, GHCR included).
    #[default]
    Monolithic,
    /// `PATCH` chunks of at most this many bytes, resumed from the registry's offset after a
    /// failure; capped at 4 MiB on ghcr.io, which refuses larger chunks ([`chunk_size_for`]).
    Chunked(u64),
}

/// Largest upload chunk GHCR accepts: it answers larger `PATCH` bodies with 416.
pub const GHCR_MAX_CHUNK: u64 = 4 * 1024 * 1024;

/// The chunk size used for `registry`: at least one byte, and at most [`GHCR_MAX_CHUNK`] on
/// ghcr.io whatever was asked.
pub fn chunk_size_for(registry: &str, requested: u64) -> u64 {
    let size = requested.max(1);
    if registry == "ghcr.io" {
        size.min(GHCR_MAX_CHUNK)
    } else {
        size
    }
}

fn repo_url(base: &str, r: &Reference, tail: &str) -> String {
    format!("{base}/v2/{}/{tail}", r.repository())
}

fn ensure_ok(
    op: &str,
    url: &str,
    resp: Response,
    ok: &[u16],
) -> futures::future::BoxFuture<'static, Result<Response, RegistryError>> {
    let status = resp.status().as_u16();
    let op = op.to_owned();
    let url = url.to_owned();
    let ok = ok.contains(&status);
    Box::pin(async move {
        if ok {
            Ok(resp)
        } else if status == 404 {
            let detail = crate::client::error_detail(&resp.bytes().await.unwrap_or_default());
            Err(RegistryError::NotFound {
                what: format!("{url}{detail}"),
            })
        } else {
            Err(status_error(&op, &url, resp).await)
        }
    })
}

/// Resolves a `Location` header against the request base.
fn location(base: &str, resp: &Response) -> Result<String, RegistryError> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            RegistryError::invalid("upload session", "the registry sent no Location header")
        })?;
    let base_url =
        url::Url::parse(base).map_err(|_| RegistryError::invalid("registry url", base))?;
    base_url
        .join(loc)
        .map(|u| u.to_string())
        .map_err(|_| RegistryError::invalid("upload session", format!("bad Location `{loc}`")))
}

fn with_digest(loc: &str, digest: &Digest) -> String {
    let sep = if loc.contains('?') { '&' } else { '?' };
    format!("{loc}{sep}digest={}", digest.as_str().replace(':', "%3A"))
}

impl RegistryClient {
    /// Fetches a manifest's exact bytes; a digest reference is verified against them.
    pub async fn get_manifest(&self, r: &Reference) -> Result<FetchedManifest, RegistryError> {
        let host = r.api_host().to_owned();
        let reference = r.manifest_reference();
        let resp = self
            .request(
                &host,
                &Scope::pull(r.repository()),
                "get manifest",
                &mut |c, base| {
                    Ok(c.get(repo_url(base, r, &format!("manifests/{reference}")))
                        .header(ACCEPT, MANIFEST_ACCEPT))
                },
            )
            .await?;
        let url = format!("{r}");
        let resp = ensure_ok("get manifest", &url, resp, &[200]).await?;
        let declared = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if resp.content_length().unwrap_or(0) > MANIFEST_LIMIT {
            return Err(RegistryError::invalid(
                format!("manifest of {r}"),
                "larger than 4 MiB",
            ));
        }
        let bytes = resp.bytes().await.map_err(|e| RegistryError::Http {
            op: "read manifest".into(),
            url: url.clone(),
            source: e.without_url(),
        })?;
        let m = FetchedManifest::new(bytes.to_vec(), declared.as_deref());
        if let Some(d) = r.digest() {
            if &m.digest != d {
                return Err(RegistryError::DigestMismatch {
                    expected: d.to_string(),
                    actual: m.digest.to_string(),
                    size: m.bytes.len() as u64,
                });
            }
        }
        Ok(m)
    }

    /// The manifest digest a reference points to (HEAD, falling back to GET).
    pub async fn resolve_digest(&self, r: &Reference) -> Result<Digest, RegistryError> {
        if let Some(d) = r.digest() {
            return Ok(d.clone());
        }
        let host = r.api_host().to_owned();
        let reference = r.manifest_reference();
        let resp = self
            .request(
                &host,
                &Scope::pull(r.repository()),
                "resolve digest",
                &mut |c, base| {
                    Ok(c.head(repo_url(base, r, &format!("manifests/{reference}")))
                        .header(ACCEPT, MANIFEST_ACCEPT))
                },
            )
            .await?;
        if resp.status() == StatusCode::OK {
            if let Some(d) = resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| Digest::parse(v).ok())
            {
                return Ok(d);
            }
        } else if resp.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound {
                what: format!("manifest {r}"),
            });
        }
        Ok(self.get_manifest(r).await?.digest)
    }

    /// Pushes manifest bytes unchanged (so the digest is preserved) at `r`'s tag or digest and
    /// returns the digest.
    pub async fn push_manifest_raw(
        &self,
        r: &Reference,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, RegistryError> {
        let host = r.api_host().to_owned();
        let reference = r.manifest_reference();
        let body = Bytes::copy_from_slice(bytes);
        let resp = self
            .request(
                &host,
                &Scope::push(r.repository()),
                "push manifest",
                &mut |c, base| {
                    Ok(c.put(repo_url(base, r, &format!("manifests/{reference}")))
                        .header(CONTENT_TYPE, media_type)
                        .body(body.clone()))
                },
            )
            .await?;
        ensure_ok("push manifest", &r.to_string(), resp, &[200, 201, 202]).await?;
        Ok(Digest::of(bytes))
    }

    /// Whether `repo` (a reference's repository) has the blob (`HEAD`).
    pub async fn blob_exists(
        &self,
        repo: &Reference,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let host = repo.api_host().to_owned();
        let resp = self
            .request(
                &host,
                &Scope::pull(repo.repository()),
                "check blob",
                &mut |c, base| Ok(c.head(repo_url(base, repo, &format!("blobs/{digest}")))),
            )
            .await?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(status_error(
                "check blob",
                &format!("{}@{digest}", repo.repository_url_name()),
                resp,
            )
            .await),
        }
    }

    /// Streams a blob from `offset` (a `Range` request when resuming). The content is verified
    /// by whoever consumes it (the layout writer or the destination registry).
    pub(crate) async fn open_blob(
        &self,
        repo: &Reference,
        desc: &Descriptor,
        offset: u64,
    ) -> Result<BlobReader, RegistryError> {
        let host = repo.api_host().to_owned();
        let digest = desc.digest.clone();
        let resp = self
            .request(
                &host,
                &Scope::pull(repo.repository()),
                "get blob",
                &mut |c, base| {
                    let mut req = c.get(repo_url(base, repo, &format!("blobs/{digest}")));
                    if offset > 0 {
                        req = req.header(RANGE, format!("bytes={offset}-"));
                    }
                    Ok(req)
                },
            )
            .await?;
        let url = format!("{}@{digest}", repo.repository_url_name());
        let resp = ensure_ok("get blob", &url, resp, &[200, 206]).await?;
        let ignored_range = offset > 0 && resp.status() == StatusCode::OK;
        let mut reader: BlobReader = Box::pin(StreamReader::new(
            resp.bytes_stream().map_err(std::io::Error::other),
        ));
        if ignored_range {
            // the registry ignored Range and sent everything: skip what the caller has
            let skipped = tokio::io::copy(&mut (&mut reader).take(offset), &mut tokio::io::sink())
                .await
                .map_err(|e| RegistryError::io("read blob", desc.digest.to_string(), e))?;
            if skipped != offset {
                return Err(RegistryError::SizeMismatch {
                    digest: desc.digest.to_string(),
                    expected: desc.size,
                    actual: skipped,
                });
            }
        }
        Ok(reader)
    }

    /// Fetches a whole (small) blob into memory, verified.
    pub async fn get_blob_bytes(
        &self,
        repo: &Reference,
        desc: &Descriptor,
    ) -> Result<Vec<u8>, RegistryError> {
        if desc.size > MANIFEST_LIMIT {
            return Err(RegistryError::invalid(
                format!("blob {}", desc.digest),
                "too large to read into memory",
            ));
        }
        let mut r = self.open_blob(repo, desc, 0).await?;
        let mut buf = Vec::new();
        r.read_to_end(&mut buf)
            .await
            .map_err(|e| RegistryError::io("read blob", desc.digest.to_string(), e))?;
        let mut v = crate::digest::Verifier::new();
        v.update(&buf);
        v.verify(&desc.digest, Some(desc.size))?;
        Ok(buf)
    }

    /// Uploads in-memory content as a blob to `repo` (skipped when present) and returns its
    /// descriptor.
    pub async fn push_blob(
        &self,
        repo: &Reference,
        media_type: &str,
        data: Bytes,
    ) -> Result<Descriptor, RegistryError> {
        let desc = Descriptor::for_bytes(media_type, &data);
        if self.blob_exists(repo, &desc.digest).await? {
            return Ok(desc);
        }
        let open: OpenBlob = Arc::new(move |offset| {
            let data = data.clone();
            Box::pin(async move {
                let slice = data.slice((offset as usize).min(data.len())..);
                Ok(Box::pin(std::io::Cursor::new(slice)) as BlobReader)
            })
        });
        self.upload_blob(repo, &desc, open, Arc::new(|_| {}), UploadMode::Monolithic)
            .await?;
        Ok(desc)
    }

    async fn start_upload(
        &self,
        repo: &Reference,
        scope: &Scope,
        query: &str,
    ) -> Result<Response, RegistryError> {
        let host = repo.api_host().to_owned();
        self.request(&host, scope, "start blob upload", &mut |c, base| {
            Ok(
                c.post(repo_url(base, repo, &format!("blobs/uploads/{query}")))
                    .header(CONTENT_LENGTH, "0"),
            )
        })
        .await
    }

    /// Cancels an upload session (best effort).
    async fn cancel_upload(&self, repo: &Reference, loc: &str) {
        let host = repo.api_host().to_owned();
        let loc = loc.to_owned();
        let _ = self
            .execute_once(
                &host,
                &Scope::push(repo.repository()),
                "cancel upload",
                &mut |c, _| Ok(c.delete(loc.clone())),
            )
            .await;
    }

    /// Cross-repository mount. `Ok(true)` when mounted (201); `Ok(false)` when the registry
    /// declined (a spec-legal 202 opens an upload session instead, which is cancelled, or any
    /// refusal) and the caller should upload.
    pub(crate) async fn mount_blob(
        &self,
        repo: &Reference,
        desc: &Descriptor,
        from: &Reference,
    ) -> Result<bool, RegistryError> {
        let scope = Scope::mount(repo.repository(), from.repository());
        let query = format!(
            "?mount={}&from={}",
            desc.digest.as_str().replace(':', "%3A"),
            from.repository()
        );
        let resp = self.start_upload(repo, &scope, &query).await?;
        match resp.status().as_u16() {
            201 => Ok(true),
            202 => {
                let (base, _) = self.base(repo.api_host()).await;
                if let Ok(loc) = location(&base, &resp) {
                    self.cancel_upload(repo, &loc).await;
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    /// Uploads one blob with retries; every attempt re-opens the content through `open`.
    /// Returns the bytes sent by the successful attempt.
    pub(crate) async fn upload_blob(
        &self,
        repo: &Reference,
        desc: &Descriptor,
        open: OpenBlob,
        on_bytes: OnBytes,
        mode: UploadMode,
    ) -> Result<u64, RegistryError> {
        let policy = self.retry_policy().clone();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match mode {
                UploadMode::Monolithic => {
                    self.upload_monolithic(repo, desc, open.clone(), on_bytes.clone())
                        .await
                }
                UploadMode::Chunked(size) => {
                    let size = chunk_size_for(repo.registry(), size);
                    self.upload_chunked(repo, desc, open.clone(), on_bytes.clone(), size)
                        .await
                }
            };
            match result {
                Ok(n) => return Ok(n),
                Err(e) => match policy.delay_after(attempt, &e) {
                    Some(d) => tokio::time::sleep(d).await,
                    None => {
                        return Err(exhausted(
                            "upload blob",
                            &format!("{}@{}", repo.repository_url_name(), desc.digest),
                            attempt,
                            e,
                        ))
                    }
                },
            }
        }
    }

    async fn upload_monolithic(
        &self,
        repo: &Reference,
        desc: &Descriptor,
        open: OpenBlob,
        on_bytes: OnBytes,
    ) -> Result<u64, RegistryError> {
        let scope = Scope::push(repo.repository());
        let host = repo.api_host().to_owned();
        let resp = self.start_upload(repo, &scope, "").await?;
        let (base, _) = self.base(&host).await;
        let resp = ensure_ok("start blob upload", &repo.to_string(), resp, &[202]).await?;
        let loc = location(&base, &resp)?;
        let put_url = with_digest(&loc, &desc.digest);
        let size = desc.size;
        let result = self
            .execute_once(&host, &scope, "upload blob", &mut |c, _| {
                let open = open.clone();
                let on_bytes = on_bytes.clone();
                let body = futures::stream::once(async move { open(0).await })
                    .map_ok(|r| {
                        ReaderStream::with_capacity(r, 256 * 1024).map_err(RegistryError::from_io)
                    })
                    .try_flatten()
                    .scan(0u64, move |sent, chunk| {
                        if let Ok(c) = &chunk {
                            *sent += c.len() as u64;
                            on_bytes(*sent);
                        }
                        futures::future::ready(Some(chunk))
                    });
                Ok(c.put(put_url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, size)
                    .body(Body::wrap_stream(body)))
            })
            .await;
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                self.cancel_upload(repo, &loc).await;
                return Err(e);
            }
        };
        let url = format!("{}@{}", repo.repository_url_name(), desc.digest);
        ensure_ok("upload blob", &url, resp, &[201, 204]).await?;
        Ok(size)
    }

    async fn upload_status(
        &self,
        host: &str,
        scope: &Scope,
        loc: &str,
    ) -> Result<(String, Option<u64>), RegistryError> {
        let loc_owned = loc.to_owned();
        let resp = self
            .request(host, scope, "get upload status", &mut |c, _| {
                Ok(c.get(loc_owned.clone()))
            })
            .await?;
        let (base, _) = self.base(host).await;
        let resp = ensure_ok(
            "get upload status",
            &redact_url(&url::Url::parse(loc).map_err(|_| RegistryError::invalid("upload", loc))?),
            resp,
            &[204, 200],
        )
        .await?;
        let next = location(&base, &resp).unwrap_or_else(|_| loc.to_owned());
        // `Range: 0-<last byte>`; distribution answers `0-0` both for nothing and for one
        // byte, so that ambiguous answer (and no answer) means "start a new session"
        let offset = resp
            .headers()
            .get(RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| r.rsplit('-').next())
            .and_then(|end| end.trim().parse::<u64>().ok())
            .filter(|end| *end > 0)
            .map(|end| end + 1);
        Ok((next, offset))
    }

    async fn upload_chunked(
        &self,
        repo: &Reference,
        desc: &Descriptor,
        open: OpenBlob,
        on_bytes: OnBytes,
        chunk_size: u64,
    ) -> Result<u64, RegistryError> {
        let scope = Scope::push(repo.repository());
        let host = repo.api_host().to_owned();
        let resp = self.start_upload(repo, &scope, "").await?;
        let (base, _) = self.base(&host).await;
        let resp = ensure_ok("start blob upload", &repo.to_string(), resp, &[202]).await?;
        let mut loc = location(&base, &resp)?;
        let mut offset = 0u64;
        let mut reader = open(0).await?;
        let mut recoveries = 0u32;
        let policy = self.retry_policy().clone();
        while offset < desc.size {
            let want = chunk_size.min(desc.size - offset) as usize;
            let mut buf = vec![0u8; want];
            reader
                .read_exact(&mut buf)
                .await
                .map_err(|e| RegistryError::io("read blob", desc.digest.to_string(), e))?;
            let chunk = Bytes::from(buf);
            let end = offset + chunk.len() as u64 - 1;
            let url = loc.clone();
            let result = self
                .execute_once(&host, &scope, "upload chunk", &mut |c, _| {
                    Ok(c.patch(url.clone())
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_RANGE, format!("{offset}-{end}"))
                        .header(CONTENT_LENGTH, chunk.len())
                        .body(chunk.clone()))
                })
                .await;
            let failure = match result {
                Ok(resp) if resp.status() == StatusCode::ACCEPTED => {
                    loc = location(&base, &resp).unwrap_or(loc);
                    offset = end + 1;
                    on_bytes(offset);
                    continue;
                }
                Ok(resp) if resp.status() == StatusCode::RANGE_NOT_SATISFIABLE => {
                    status_error("upload chunk", &repo.to_string(), resp).await
                }
                Ok(resp) => return Err(status_error("upload chunk", &repo.to_string(), resp).await),
                Err(e) if e.is_retryable() => e,
                Err(e) => return Err(e),
            };
            // ask the registry where it is and resume from there
            recoveries += 1;
            if recoveries >= policy.max_attempts.max(1) {
                return Err(failure);
            }
            if let Some(d) = policy.delay_after(recoveries, &failure) {
                tokio::time::sleep(d).await;
            }
            let (next, at) = self.upload_status(&host, &scope, &loc).await?;
            match at {
                Some(at) => {
                    loc = next;
                    offset = at;
                }
                None => {
                    self.cancel_upload(repo, &loc).await;
                    let resp = self.start_upload(repo, &scope, "").await?;
                    let resp =
                        ensure_ok("start blob upload", &repo.to_string(), resp, &[202]).await?;
                    loc = location(&base, &resp)?;
                    offset = 0;
                }
            }
            reader = open(offset).await?;
        }
        let url = with_digest(&loc, &desc.digest);
        let resp = self
            .request(&host, &scope, "finish blob upload", &mut |c, _| {
                Ok(c.put(url.clone()).header(CONTENT_LENGTH, "0"))
            })
            .await?;
        ensure_ok("finish blob upload", &repo.to_string(), resp, &[201, 204]).await?;
        Ok(desc.size)
    }

    /// Lists a repository's tags, following `Link` pagination.
    pub async fn list_tags(&self, repo: &Reference) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let host = repo.api_host().to_owned();
        let (base, _) = self.base(&host).await;
        let mut next = Some(repo_url(&base, repo, "tags/list?n=1000"));
        let mut tags = Vec::new();
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > 10_000 {
                break;
            }
            let u = url.clone();
            let resp = self
                .request(
                    &host,
                    &Scope::pull(repo.repository()),
                    "list tags",
                    &mut |c, _| Ok(c.get(u.clone())),
                )
                .await?;
            let resp = ensure_ok("list tags", &repo.repository_url_name(), resp, &[200]).await?;
            next = resp
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| {
                    let l = l.trim();
                    let start = l.find('<')? + 1;
                    let end = l.find('>')?;
                    (l.contains("rel=\"next\"") || l.contains("rel=next"))
                        .then(|| l[start..end].to_owned())
                })
                .and_then(|l| url::Url::parse(&base).ok()?.join(&l).ok())
                .map(|u| u.to_string());
            let body = resp.bytes().await.map_err(|e| RegistryError::Http {
                op: "read tags".into(),
                url: repo.repository_url_name(),
                source: e.without_url(),
            })?;
            let list: TagList = serde_json::from_slice(&body).map_err(|e| {
                RegistryError::json(format!("tag list of {}", repo.repository_url_name()), e)
            })?;
            tags.extend(list.tags.unwrap_or_default());
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// Deletes a tag (`DELETE /manifests/<tag>`, OCI 1.1). A registry that does not allow it
    /// answers 400 or 405: [`RegistryError::DeleteUnsupported`].
    pub async fn delete_tag(&self, r: &Reference) -> Result<(), RegistryError> {
        let tag = r
            .tag()
            .ok_or_else(|| RegistryError::invalid(r.to_string(), "no tag to delete"))?
            .to_owned();
        self.delete_manifest_ref(r, &tag).await
    }

    /// Deletes a manifest by digest (which removes every tag pointing to it).
    pub async fn delete_manifest(
        &self,
        repo: &Reference,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        self.delete_manifest_ref(repo, digest.as_str()).await
    }

    async fn delete_manifest_ref(
        &self,
        r: &Reference,
        reference: &str,
    ) -> Result<(), RegistryError> {
        let host = r.api_host().to_owned();
        let resp = self
            .request(
                &host,
                &Scope::delete(r.repository()),
                "delete manifest",
                &mut |c, base| Ok(c.delete(repo_url(base, r, &format!("manifests/{reference}")))),
            )
            .await?;
        let what = format!("{}:{reference}", r.repository_url_name());
        match resp.status().as_u16() {
            200 | 202 | 204 => Ok(()),
            404 => Err(RegistryError::NotFound { what }),
            status @ (400 | 405) => Err(RegistryError::DeleteUnsupported {
                what,
                status,
                detail: crate::client::error_detail(&resp.bytes().await.unwrap_or_default()),
            }),
            _ => Err(status_error("delete manifest", &what, resp).await),
        }
    }
}

impl RegistryError {
    pub(crate) fn from_io(e: std::io::Error) -> RegistryError {
        RegistryError::io("read blob", "(stream)", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ghcr_chunks_are_capped_at_4_mib() {
        assert_eq!(chunk_size_for("ghcr.io", 64 * 1024 * 1024), GHCR_MAX_CHUNK);
        assert_eq!(chunk_size_for("ghcr.io", 1024), 1024);
        assert_eq!(
            chunk_size_for("127.0.0.1:5000", 64 * 1024 * 1024),
            64 * 1024 * 1024
        );
        assert_eq!(chunk_size_for("127.0.0.1:5000", 0), 1);
    }
}
