//! Events as Kubernetes core/v1 Events (feature `kube-events`), as Linkerd records them:
//! `kubectl describe deploy/linkerd-identity` shows them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Event as KubeEvent, EventSource, ObjectReference as KubeObjectReference,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use meshid_kube::{KubeApiConfig, KubeClient};
use tokio::sync::{mpsc, oneshot};

use crate::{Error, Event, EventSink};

/// The object events are about (`involvedObject`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectReference {
    /// `apps/v1`.
    pub api_version: String,
    /// `Deployment`.
    pub kind: String,
    /// `linkerd-identity`.
    pub name: String,
    /// `linkerd`.
    pub namespace: String,
    /// The object's UID, if known (events then attach to this incarnation only).
    pub uid: Option<String>,
}

impl ObjectReference {
    /// The Deployment `name` in `namespace`.
    pub fn deployment(namespace: &str, name: &str) -> Self {
        Self {
            api_version: "apps/v1".to_owned(),
            kind: "Deployment".to_owned(),
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            uid: None,
        }
    }
}

/// Where and how to post events.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KubeEventsConfig {
    /// The API server, its CA, the credentials and the timeout of one post (the same access
    /// as TokenReview: in-cluster, a kubeconfig, or explicit).
    pub api: KubeApiConfig,
    /// The object the events are about (default: Deployment `linkerd-identity` in `linkerd`).
    pub involved_object: ObjectReference,
    /// `source.component` and `reportingComponent` (`linkerd-identity`).
    pub component: String,
    /// Events waiting to be posted beyond which new ones are dropped (logged).
    pub queue: usize,
}

impl KubeEventsConfig {
    /// Posting through `api` as Linkerd's identity service does: on the Deployment
    /// `linkerd-identity` in `linkerd`, as component `linkerd-identity`, 256 events queued at
    /// most. For explicit settings, `KubeEventsConfig::new(KubeApiConfig::new(api_server,
    /// ca_file, token_file)?)`.
    pub fn new(api: KubeApiConfig) -> Self {
        Self {
            api,
            involved_object: ObjectReference::deployment("linkerd", "linkerd-identity"),
            component: "linkerd-identity".to_owned(),
            queue: 256,
        }
    }
}

/// Posts events as typed core/v1 Events (`k8s-openapi`, through kube-rs) to the Kubernetes
/// API server, on the configured object.
///
/// `emit` never blocks: events are queued for a background task, which posts them one at a
/// time; a failed post is logged and the event dropped. The identity service needs RBAC
/// `create` on `events` in the object's namespace. At shutdown, [`KubeEventsTask::close`]
/// posts what is still queued, within a deadline.
#[derive(Clone, Debug)]
pub struct KubeEventSink {
    tx: mpsc::Sender<Event>,
    /// Events dropped because the queue was full or closed.
    dropped: Arc<AtomicU64>,
    /// Events queued and not yet posted (or given up on).
    pending: Arc<AtomicUsize>,
}

/// The posting task of a [`KubeEventSink`].
///
/// The task also ends by itself once every sink is dropped and the queue is empty; dropping
/// this handle does not stop it.
#[derive(Debug)]
pub struct KubeEventsTask {
    close: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    pending: Arc<AtomicUsize>,
}

impl KubeEventsTask {
    /// Stops taking events (later ones are dropped, and logged), posts the ones already
    /// queued, and waits for that at most `within`. Returns how many queued events were not
    /// posted in time; they are given up.
    pub async fn close(mut self, within: Duration) -> usize {
        // An error means the task has already ended.
        let _ = self.close.send(());
        match tokio::time::timeout(within, &mut self.task).await {
            Ok(_) => 0,
            Err(_) => {
                self.task.abort();
                self.pending.load(Ordering::Acquire)
            }
        }
    }
}

impl KubeEventSink {
    /// Starts the posting task on the current tokio runtime. Builds the Kubernetes API client
    /// now (reading its files, running its exec plugin), so a broken configuration fails here
    /// rather than on the first event.
    pub async fn spawn(config: KubeEventsConfig) -> Result<(Self, KubeEventsTask), Error> {
        let poster = Poster::new(config).await?;
        let (tx, mut rx) = mpsc::channel::<Event>(poster.config.queue.max(1));
        let (close, closing) = oneshot::channel::<()>();
        let pending = Arc::new(AtomicUsize::new(0));
        let posted = Arc::clone(&pending);
        let task = tokio::spawn(async move {
            let mut closing = Some(closing);
            let mut failed = 0u64;
            loop {
                let event = match closing.as_mut() {
                    Some(signal) => tokio::select! {
                        biased;
                        closed = signal => {
                            closing = None;
                            // A dropped handle (an error) leaves the queue open.
                            if closed.is_ok() {
                                rx.close();
                            }
                            continue;
                        }
                        event = rx.recv() => event,
                    },
                    None => rx.recv().await,
                };
                let Some(event) = event else {
                    break;
                };
                if let Err(e) = poster.post(&event).await {
                    failed += 1;
                    if worth_a_warning(failed) {
                        tracing::warn!(error = %e, reason = event.reason, failed, "Kubernetes Event not recorded");
                    } else {
                        tracing::debug!(error = %e, reason = event.reason, failed, "Kubernetes Event not recorded");
                    }
                }
                posted.fetch_sub(1, Ordering::AcqRel);
            }
        });
        Ok((
            Self {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
                pending: Arc::clone(&pending),
            },
            KubeEventsTask {
                close,
                task,
                pending,
            },
        ))
    }
}

impl EventSink for KubeEventSink {
    fn emit(&self, event: &Event) {
        // Counted before it is queued, so the task never sees it uncounted.
        self.pending.fetch_add(1, Ordering::AcqRel);
        if self.tx.try_send(event.clone()).is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            let dropped = self
                .dropped
                .fetch_add(1, Ordering::Relaxed)
                .saturating_add(1);
            if worth_a_warning(dropped) {
                tracing::warn!(
                    reason = event.reason,
                    dropped,
                    "Kubernetes Event queue full or closed; event dropped"
                );
            } else {
                tracing::debug!(reason = event.reason, dropped, "Kubernetes Event dropped");
            }
        }
    }
}

/// Whether the `n`th failure of a kind is logged at warn (the 1st, 2nd, 4th, 8th, ...; the
/// others at debug), so an API server outage during a pod-start storm does not flood the log.
fn worth_a_warning(n: u64) -> bool {
    n.is_power_of_two()
}

struct Poster {
    client: KubeClient,
    config: KubeEventsConfig,
}

impl Poster {
    async fn new(config: KubeEventsConfig) -> Result<Self, Error> {
        let client = KubeClient::connect(config.api.clone()).await?;
        Ok(Self { client, config })
    }

    async fn post(&self, event: &Event) -> Result<(), Error> {
        let namespace = &self.config.involved_object.namespace;
        match self
            .client
            .create(Some(namespace), &self.event(event))
            .await
        {
            Ok(_) => Ok(()),
            Err(meshid_kube::Error::Api { status, message }) => {
                Err(Error::KubeEvents { status, message })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The core/v1 Event, as client-go's event recorder writes it for Linkerd.
    fn event(&self, event: &Event) -> KubeEvent {
        let object = &self.config.involved_object;
        let component = &self.config.component;
        // Whole seconds, as core/v1 Event timestamps are.
        let time = Timestamp::from_second(event.time.unix_timestamp())
            .ok()
            .map(Time);
        KubeEvent {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}.", object.name)),
                namespace: Some(object.namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: KubeObjectReference {
                api_version: Some(object.api_version.clone()),
                kind: Some(object.kind.clone()),
                name: Some(object.name.clone()),
                namespace: Some(object.namespace.clone()),
                uid: object.uid.clone(),
                ..KubeObjectReference::default()
            },
            type_: Some(event.kind.as_str().to_owned()),
            reason: Some(event.reason.to_owned()),
            message: Some(event.message.clone()),
            source: Some(EventSource {
                component: Some(component.clone()),
                host: None,
            }),
            reporting_component: Some(component.clone()),
            first_timestamp: time.clone(),
            last_timestamp: time,
            count: Some(1),
            ..KubeEvent::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::worth_a_warning;

    #[test]
    fn repeated_failures_are_warned_about_ever_more_rarely() {
        let warned: Vec<u64> = (1..=1000).filter(|&n| worth_a_warning(n)).collect();
        assert_eq!(warned, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]);
    }
}
