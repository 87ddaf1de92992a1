//! Engine events: container lifecycle and health changes, as a stream.

use std::collections::HashMap;

use bollard::system::EventsOptions;
use futures::{Stream, StreamExt};

use super::{Engine, EngineError};

/// A container event (`start`, `die`, `stop`, `destroy`, `health_status: healthy`, ...).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContainerEvent {
    /// The action as the engine names it, e.g. `health_status: unhealthy`.
    pub action: String,
    /// The container ID.
    pub id: String,
    /// The container's labels/attributes carried by the event.
    pub attributes: HashMap<String, String>,
}

impl Engine {
    /// Streams container events, optionally only those of one compose project. The stream
    /// ends when the connection to the engine ends.
    pub fn container_events(
        &self,
        project: Option<&str>,
    ) -> impl Stream<Item = Result<ContainerEvent, EngineError>> + Send + 'static {
        let mut filters = HashMap::from([("type".to_string(), vec!["container".to_string()])]);
        if let Some(p) = project {
            filters.insert(
                "label".to_string(),
                vec![format!("{}={p}", super::containers::PROJECT_LABEL)],
            );
        }
        self.docker
            .events(Some(EventsOptions::<String> {
                filters,
                ..Default::default()
            }))
            .map(|item| {
                let ev = item.map_err(EngineError::api("read engine events"))?;
                let actor = ev.actor.unwrap_or_default();
                Ok(ContainerEvent {
                    action: ev.action.unwrap_or_default(),
                    id: actor.id.unwrap_or_default(),
                    attributes: actor.attributes.unwrap_or_default(),
                })
            })
    }
}
