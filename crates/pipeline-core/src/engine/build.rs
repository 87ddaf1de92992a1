//! Image builds through the engine's `/build` endpoint.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use bollard::image::BuildImageOptions;
use futures::StreamExt;

use super::context::{collect_context, ContextPolicy};
use super::{Engine, EngineError, EngineEvent};

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The context directory.
    pub context: PathBuf,
    /// The Dockerfile (absolute, or relative to the context). Default `Dockerfile`.
    pub dockerfile: PathBuf,
    /// Tags (`repository:tag`); at least one must not be `latest` (use the commit SHA).
    pub tags: Vec<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// `--target` stage.
    pub target: Option<String>,
    /// Image labels (see [`oci_labels`]).
    pub labels: BTreeMap<String, String>,
    /// Context policy (env files).
    pub policy: ContextPolicy,
}

impl BuildRequest {
    /// A request with defaults: `context/Dockerfile`, no args, no labels.
    pub fn new(context: PathBuf, tags: Vec<String>) -> Self {
        BuildRequest {
            dockerfile: context.join("Dockerfile"),
            context,
            tags,
            build_args: BTreeMap::new(),
            target: None,
            labels: BTreeMap::new(),
            policy: ContextPolicy::default(),
        }
    }
}

/// The result of a successful build.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BuildOutput {
    /// The image ID (`sha256:...`).
    pub image_id: String,
    /// Tags applied.
    pub tags: Vec<String>,
    /// Context warnings (also sent as events).
    pub warnings: Vec<String>,
}

/// The OCI annotation labels for a build: `org.opencontainers.image.revision`, `.source`,
/// `.created` (RFC 3339).
pub fn oci_labels(
    revision: &str,
    source: &str,
    created: chrono::DateTime<chrono::Utc>,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "org.opencontainers.image.revision".to_string(),
            revision.to_string(),
        ),
        (
            "org.opencontainers.image.source".to_string(),
            source.to_string(),
        ),
        (
            "org.opencontainers.image.created".to_string(),
            created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
    ])
}

fn check_tags(tags: &[String]) -> Result<(), EngineError> {
    if tags.is_empty() {
        return Err(EngineError::InvalidRequest("no tag given".into()));
    }
    let only_latest = tags.iter().all(|t| {
        t.rsplit_once(':')
            .is_none_or(|(_, tag)| tag == "latest" || tag.contains('/'))
    });
    if only_latest {
        return Err(EngineError::InvalidRequest(format!(
            "tags {tags:?} name only `latest`; tag with the commit SHA"
        )));
    }
    Ok(())
}

impl Engine {
    /// Builds an image from a tar of the context, streaming the daemon's output as
    /// [`EngineEvent::BuildOutput`]. The first tag is built, the others are applied after.
    pub async fn build(
        &self,
        req: &BuildRequest,
        on_event: &(dyn Fn(EngineEvent) + Send + Sync),
    ) -> Result<BuildOutput, EngineError> {
        check_tags(&req.tags)?;
        let dockerfile = if req.dockerfile.is_absolute() {
            req.dockerfile.clone()
        } else {
            req.context.join(&req.dockerfile)
        };
        let context = {
            let dir = req.context.clone();
            let df = dockerfile.clone();
            let policy = req.policy;
            tokio::task::spawn_blocking(move || collect_context(&dir, &df, policy))
                .await
                .map_err(|e| EngineError::Context {
                    path: req.context.clone(),
                    source: std::io::Error::other(e),
                })??
        };
        for w in &context.warnings {
            on_event(EngineEvent::Warning { message: w.clone() });
        }
        let dockerfile_rel = dockerfile
            .strip_prefix(&req.context)
            .unwrap_or(&dockerfile)
            .to_string_lossy()
            .into_owned();
        let first = req.tags[0].clone();
        let options = BuildImageOptions::<String> {
            dockerfile: dockerfile_rel,
            t: first.clone(),
            rm: true,
            forcerm: true,
            buildargs: req
                .build_args
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
            labels: req
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            target: req.target.clone().unwrap_or_default(),
            ..Default::default()
        };
        let mut stream = self
            .docker
            .build_image(options, None, Some(context.tar.into()));
        let mut image_id = None;
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(EngineError::Build {
                        tag: first,
                        message: error,
                    })
                }
                Err(source) => {
                    return Err(EngineError::Api {
                        action: format!("build image {first}"),
                        source,
                    })
                }
            };
            if let Some(err) = info.error {
                return Err(EngineError::Build {
                    tag: first,
                    message: err.trim().to_string(),
                });
            }
            if let Some(s) = info.stream {
                for line in s.lines() {
                    if !line.trim().is_empty() {
                        on_event(EngineEvent::BuildOutput {
                            line: line.to_string(),
                        });
                    }
                }
            }
            if let Some(aux) = info.aux {
                if let Some(id) = aux.id {
                    image_id = Some(id);
                }
            }
        }
        let image_id = match image_id {
            Some(id) => id,
            None => self.inspect_image_id(&first).await?,
        };
        for tag in &req.tags[1..] {
            self.tag(&image_id, tag).await?;
        }
        Ok(BuildOutput {
            image_id,
            tags: req.tags.clone(),
            warnings: context.warnings,
        })
    }

    /// The ID of a local image, or a not-found error.
    pub async fn inspect_image_id(&self, image: &str) -> Result<String, EngineError> {
        let inspect = self
            .docker
            .inspect_image(image)
            .await
            .map_err(EngineError::api(format!("inspect image {image}")))?;
        Ok(inspect.id.unwrap_or_default())
    }

    /// Tags `image` as `target` (`repository:tag`).
    pub async fn tag(&self, image: &str, target: &str) -> Result<(), EngineError> {
        let (repo, tag) = split_reference(target);
        self.docker
            .tag_image(
                image,
                Some(bollard::image::TagImageOptions {
                    repo: repo.to_string(),
                    tag: tag.to_string(),
                }),
            )
            .await
            .map_err(EngineError::api(format!("tag {image} as {target}")))
    }
}

/// Splits `repo:tag` (a registry port is not a tag); the tag defaults to `latest`.
pub fn split_reference(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_need_more_than_latest() {
        assert!(check_tags(&[]).is_err());
        assert!(check_tags(&["app:latest".into()]).is_err());
        assert!(check_tags(&["app".into()]).is_err());
        assert!(check_tags(&["app:latest".into(), "app:0123abc".into()]).is_ok());
        assert!(check_tags(&["localhost:5000/app:abc".into()]).is_ok());
        assert!(check_tags(&["localhost:5000/app".into()]).is_err());
    }

    #[test]
    fn split() {
        assert_eq!(split_reference("a/b:1"), ("a/b", "1"));
        assert_eq!(
            split_reference("localhost:5000/b"),
            ("localhost:5000/b", "latest")
        );
    }

    #[test]
    fn labels() {
        let t = chrono::DateTime::from_timestamp(0, 0).expect("time");
        let l = oci_labels("abc", "https://x", t);
        assert_eq!(
            l["org.opencontainers.image.created"],
            "1970-01-01T00:00:00Z"
        );
    }
}
