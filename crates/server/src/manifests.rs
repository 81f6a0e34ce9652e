//! Kubernetes manifests that run the identity service (`identity-ca manifests`): typed
//! `k8s-openapi` objects, written as one multi-document YAML stream.
//!
//! [`Manifests::build`] makes, from [`ManifestOptions`], what Linkerd's chart makes for its
//! identity controller, with the same names, so proxies and tools find it where they look:
//!
//! | object | name | what |
//! |---|---|---|
//! | ServiceAccount | `linkerd-identity` | the identity the pods run as |
//! | ClusterRole + ClusterRoleBinding | `linkerd-<ns>-identity` | exactly `tokenreviews: create` and `events: create, patch` (plus `get` on the API server's two OIDC discovery paths with [`ManifestOptions::oidc_discovery`]) |
//! | Service | `linkerd-identity` | ClusterIP, gRPC port 8080 |
//! | Service | `linkerd-identity-headless` | `clusterIP: None`, gRPC port 8080 (what Linkerd's proxies dial) |
//! | PodDisruptionBudget | `linkerd-identity` | at most one pod down at a time |
//! | Deployment | `linkerd-identity` | `identity-ca serve` (see below) |
//!
//! The Deployment's pods are spread over nodes (`kubernetes.io/hostname`, at most one pod of
//! difference, nodes with taints such as `unreachable` left out), probed on the admin
//! server's [`LIVE_PATH`] and [`READY_PATH`],
//! run as a non-root user on a read-only root filesystem with every capability dropped,
//! privilege escalation off and the runtime's default seccomp profile, with resource
//! requests and limits. They mount the issuer Secret `linkerd-identity-issuer` and the
//! trust-roots ConfigMap `linkerd-identity-trust-roots` where Linkerd's chart mounts them
//! ([`crate::linkerd`]), and name both explicitly (`--issuer`, `--trust-anchors`), so a
//! missing mount stops the pod instead of starting development mode. gRPC listens on
//! `0.0.0.0:8080` and admin HTTP on `0.0.0.0:9990`; tokens are reviewed with TokenReview
//! through the in-cluster configuration, and events are posted on the Deployment
//! (`--kube-events`).
//!
//! The Secret and the ConfigMap are not part of the manifests: they hold the issuer's key
//! and the trust anchors, which are made and rotated apart from the service (by hand with
//! `identity-ca root-ca` and `issuer`, by cert-manager, or by Linkerd's install).
//!
//! # Example
//!
//! ```
//! use meshid_server::manifests::{ManifestOptions, Manifests};
//!
//! let mut options = ManifestOptions::default();
//! options.namespace = "mesh".parse()?;
//! options.replicas = 2;
//! options.image = "registry.example/identity-ca:v1".parse()?;
//! let manifests = Manifests::build(&options)?;
//! assert_eq!(manifests.deployment.metadata.namespace.as_deref(), Some("mesh"));
//!
//! // One YAML stream for `kubectl apply -f -`, read back into the same typed objects.
//! let yaml = manifests.to_yaml()?;
//! assert_eq!(Manifests::from_yaml(&yaml)?, manifests);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::ops::RangeInclusive;
use core::str::FromStr;
use std::collections::BTreeMap;

use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, HTTPGetAction,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecretVolumeSource, SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec,
    TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::serde::Serialize;
use k8s_openapi::serde::de::DeserializeOwned;
use meshid_issuer::IssuerScheme;
use meshid_policy::{Mesh, Namespace, TrustDomain};

use crate::Error;
use crate::admin::{LIVE_PATH, READY_PATH};
use crate::linkerd::{
    LINKERD_ISSUER_DIR, LINKERD_ISSUER_SECRET, LINKERD_TRUST_ANCHORS,
    LINKERD_TRUST_ROOTS_CONFIG_MAP, LINKERD_TRUST_ROOTS_DIR,
};

/// The name Linkerd's chart gives the identity Deployment, its ServiceAccount, its
/// ClusterIP Service and its PodDisruptionBudget.
pub const NAME: &str = "linkerd-identity";
/// The headless Service Linkerd's proxies dial (`linkerd-identity-headless.<ns>.svc...:8080`).
pub const HEADLESS_SERVICE: &str = "linkerd-identity-headless";
/// The container running `identity-ca`, as Linkerd's chart names it.
pub const CONTAINER: &str = "identity";
/// The gRPC (`Certify`) port, in the pod and on both Services.
pub const GRPC_PORT: u16 = 8080;
/// The admin HTTP port (probes, `/metrics`).
pub const ADMIN_PORT: u16 = 9990;
/// The container port names (Linkerd's chart's).
pub const GRPC_PORT_NAME: &str = "grpc";
/// The admin container port's name.
pub const ADMIN_PORT_NAME: &str = "admin-http";
/// The image the manifests name unless told otherwise: this version's `identity-ca`.
pub const DEFAULT_IMAGE: &str = concat!("ghcr.io/meshid/identity-ca:v", env!("CARGO_PKG_VERSION"));
/// The user and group the container runs as unless told otherwise (distroless's `nonroot`).
pub const DEFAULT_RUN_AS_USER: i64 = 65532;
/// The API server paths of its OIDC discovery: the configuration and the signing keys.
pub const OIDC_DISCOVERY_PATHS: [&str; 2] =
    ["/.well-known/openid-configuration", "/openid/v1/jwks"];

/// The label Linkerd puts on its control-plane pods, naming the component.
const COMPONENT_LABEL: &str = "linkerd.io/control-plane-component";
/// The label naming the control-plane namespace.
const CONTROL_PLANE_NS_LABEL: &str = "linkerd.io/control-plane-ns";
/// The issuer Secret's volume.
const ISSUER_VOLUME: &str = "identity-issuer";
/// The trust-roots ConfigMap's volume.
const TRUST_ROOTS_VOLUME: &str = "trust-roots";
/// The issuer Secret's files: readable by the owner and the pod's group (`fsGroup`) only.
const ISSUER_FILE_MODE: i32 = 0o440;

// === options ===

/// A container image reference (`[registry/]repository[:tag][@digest]`), checked against the
/// OCI distribution grammar and kept as written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Image(String);

impl Image {
    /// Checks `reference` as an image reference.
    pub fn new(reference: &str) -> Result<Self, Error> {
        match oci_spec::distribution::Reference::from_str(reference) {
            Ok(_) => Ok(Self(reference.to_owned())),
            Err(e) => Err(Error::Config {
                reason: format!(
                    "invalid image '{reference}': {e} (expected \
                     [registry/]repository[:tag][@digest], the repository in lower case)"
                ),
            }),
        }
    }

    /// The reference as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Image {
    fn default() -> Self {
        Self(DEFAULT_IMAGE.to_owned())
    }
}

impl FromStr for Image {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl fmt::Display for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the manifests are made from. [`Default`]: Linkerd's names in namespace `linkerd`,
/// trust domain `cluster.local`, 3 replicas, [`DEFAULT_IMAGE`], issuer scheme
/// `linkerd.io/tls`, no OIDC discovery access.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ManifestOptions {
    /// The control-plane namespace: where everything but the ClusterRole and its binding
    /// goes, and the `--controller-namespace` of the identities issued.
    pub namespace: Namespace,
    /// Pods ([`REPLICAS`](Self::REPLICAS)).
    pub replicas: i32,
    /// The `identity-ca` image.
    pub image: Image,
    /// The trust domain (`--identity-trust-domain`).
    pub trust_domain: TrustDomain,
    /// The issuer Secret's layout (`--identity-scheme`): `linkerd.io/tls` (`crt.pem`,
    /// `key.pem`, Linkerd's install) or `kubernetes.io/tls` (`tls.crt`, `tls.key`,
    /// cert-manager's).
    pub issuer_scheme: IssuerScheme,
    /// Also grant `get` on the API server's OIDC discovery paths
    /// ([`OIDC_DISCOVERY_PATHS`]), for token validation that reads the cluster's issuer
    /// configuration and signing keys through the API server. Off by default: TokenReview
    /// needs neither.
    pub oidc_discovery: bool,
    /// The container's resource requests and limits.
    pub resources: ResourceRequirements,
    /// The user and group the container runs as (not 0: [`RUN_AS_USER`](Self::RUN_AS_USER)).
    pub run_as_user: i64,
}

impl Default for ManifestOptions {
    fn default() -> Self {
        let quantities = |pairs: [(&str, &str); 2]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
                .collect::<BTreeMap<_, _>>()
        };
        let mesh = Mesh::default();
        Self {
            namespace: mesh.control_plane_namespace().clone(),
            replicas: 3,
            image: Image::default(),
            trust_domain: mesh.trust_domain().clone(),
            issuer_scheme: IssuerScheme::LinkerdTls,
            oidc_discovery: false,
            // Under a load of 17,000 certifications a second the service stays below 13 MiB
            // (BENCHMARKS.md); the token caches are bounded.
            resources: ResourceRequirements {
                requests: Some(quantities([("cpu", "100m"), ("memory", "32Mi")])),
                limits: Some(quantities([("cpu", "1"), ("memory", "128Mi")])),
                ..ResourceRequirements::default()
            },
            run_as_user: DEFAULT_RUN_AS_USER,
        }
    }
}

impl ManifestOptions {
    /// Allowed [`replicas`](Self::replicas).
    pub const REPLICAS: RangeInclusive<i32> = 1..=100;
    /// Allowed [`run_as_user`](Self::run_as_user): anyone but root.
    pub const RUN_AS_USER: RangeInclusive<i64> = 1..=2_147_483_647;

    /// Checks the numbers against their allowed ranges (names and the image are checked by
    /// their types).
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |name: &str, value: String, range: String| Error::Config {
            reason: format!("invalid manifest option {name}: {value} is not between {range}"),
        };
        if !Self::REPLICAS.contains(&self.replicas) {
            return Err(invalid(
                "replicas",
                self.replicas.to_string(),
                format!("{} and {}", Self::REPLICAS.start(), Self::REPLICAS.end()),
            ));
        }
        if !Self::RUN_AS_USER.contains(&self.run_as_user) {
            return Err(invalid(
                "run_as_user",
                self.run_as_user.to_string(),
                format!(
                    "{} and {}",
                    Self::RUN_AS_USER.start(),
                    Self::RUN_AS_USER.end()
                ),
            ));
        }
        Ok(())
    }
}

// === manifests ===

/// The identity service's objects, typed. [`to_yaml`](Self::to_yaml) writes them in the
/// order `kubectl apply` wants them.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Manifests {
    /// `linkerd-identity`.
    pub service_account: ServiceAccount,
    /// `linkerd-<ns>-identity`: TokenReviews and Events.
    pub cluster_role: ClusterRole,
    /// `linkerd-<ns>-identity`: the role, to the ServiceAccount.
    pub cluster_role_binding: ClusterRoleBinding,
    /// `linkerd-identity`, ClusterIP.
    pub service: Service,
    /// `linkerd-identity-headless`, `clusterIP: None`.
    pub headless_service: Service,
    /// `linkerd-identity`: at most one pod unavailable.
    pub pod_disruption_budget: PodDisruptionBudget,
    /// `linkerd-identity`: the pods.
    pub deployment: Deployment,
}

impl Manifests {
    /// The objects for `options`, after [`ManifestOptions::validate`].
    pub fn build(options: &ManifestOptions) -> Result<Self, Error> {
        options.validate()?;
        let ManifestOptions {
            namespace,
            replicas,
            image,
            trust_domain,
            issuer_scheme,
            oidc_discovery,
            resources,
            run_as_user,
        } = options;
        let ns = namespace.as_str();
        let role = cluster_role_name(namespace);
        let meta = |name: &str| ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(ns.to_owned()),
            labels: Some(object_labels(namespace)),
            ..ObjectMeta::default()
        };
        let cluster_meta = ObjectMeta {
            name: Some(role.clone()),
            labels: Some(object_labels(namespace)),
            ..ObjectMeta::default()
        };

        let mut rules = vec![
            PolicyRule {
                api_groups: Some(vec!["authentication.k8s.io".to_owned()]),
                resources: Some(vec!["tokenreviews".to_owned()]),
                verbs: vec!["create".to_owned()],
                ..PolicyRule::default()
            },
            // Linkerd's chart grants Events cluster-wide too (linkerd2 issue 9367); the
            // service only posts them on its own Deployment.
            PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["events".to_owned()]),
                verbs: vec!["create".to_owned(), "patch".to_owned()],
                ..PolicyRule::default()
            },
        ];
        if *oidc_discovery {
            rules.push(PolicyRule {
                non_resource_urls: Some(OIDC_DISCOVERY_PATHS.map(str::to_owned).to_vec()),
                verbs: vec!["get".to_owned()],
                ..PolicyRule::default()
            });
        }

        let service = |name: &str, cluster_ip: Option<&str>| Service {
            metadata: meta(name),
            spec: Some(ServiceSpec {
                type_: cluster_ip.is_none().then(|| "ClusterIP".to_owned()),
                cluster_ip: cluster_ip.map(str::to_owned),
                selector: Some(selector_labels(namespace)),
                ports: Some(vec![ServicePort {
                    name: Some(GRPC_PORT_NAME.to_owned()),
                    port: i32::from(GRPC_PORT),
                    target_port: Some(IntOrString::String(GRPC_PORT_NAME.to_owned())),
                    protocol: Some("TCP".to_owned()),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        };

        Ok(Self {
            service_account: ServiceAccount {
                metadata: meta(NAME),
                ..ServiceAccount::default()
            },
            cluster_role: ClusterRole {
                metadata: cluster_meta.clone(),
                rules: Some(rules),
                ..ClusterRole::default()
            },
            cluster_role_binding: ClusterRoleBinding {
                metadata: cluster_meta,
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".to_owned(),
                    kind: ClusterRole::KIND.to_owned(),
                    name: role,
                },
                subjects: Some(vec![Subject {
                    kind: ServiceAccount::KIND.to_owned(),
                    name: NAME.to_owned(),
                    namespace: Some(ns.to_owned()),
                    ..Subject::default()
                }]),
            },
            service: service(NAME, None),
            headless_service: service(HEADLESS_SERVICE, Some("None")),
            pod_disruption_budget: PodDisruptionBudget {
                metadata: meta(NAME),
                spec: Some(PodDisruptionBudgetSpec {
                    max_unavailable: Some(IntOrString::Int(1)),
                    selector: Some(label_selector(namespace)),
                    // A pod that is not ready can be evicted: a node drain is never blocked
                    // by a crash-looping replica.
                    unhealthy_pod_eviction_policy: Some("AlwaysAllow".to_owned()),
                    ..PodDisruptionBudgetSpec::default()
                }),
                ..PodDisruptionBudget::default()
            },
            deployment: Deployment {
                metadata: meta(NAME),
                spec: Some(DeploymentSpec {
                    replicas: Some(*replicas),
                    selector: label_selector(namespace),
                    // A new pod is ready before an old one goes, also with one replica.
                    strategy: Some(DeploymentStrategy {
                        type_: Some("RollingUpdate".to_owned()),
                        rolling_update: Some(RollingUpdateDeployment {
                            max_surge: Some(IntOrString::Int(1)),
                            max_unavailable: Some(IntOrString::Int(0)),
                        }),
                    }),
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(object_labels(namespace)),
                            // The service cannot be meshed by the proxies it certifies.
                            annotations: Some(BTreeMap::from([(
                                "linkerd.io/inject".to_owned(),
                                "disabled".to_owned(),
                            )])),
                            ..ObjectMeta::default()
                        }),
                        spec: Some(pod_spec(
                            namespace,
                            container(namespace, image, trust_domain, *issuer_scheme, resources),
                            *run_as_user,
                        )),
                    },
                    ..DeploymentSpec::default()
                }),
                ..Deployment::default()
            },
        })
    }

    /// The objects as one YAML stream, documents separated by `---`, in the order `kubectl
    /// apply -f` creates them: ServiceAccount, ClusterRole, ClusterRoleBinding, the Services,
    /// the PodDisruptionBudget, the Deployment.
    pub fn to_yaml(&self) -> Result<String, Error> {
        let Self {
            service_account,
            cluster_role,
            cluster_role_binding,
            service,
            headless_service,
            pod_disruption_budget,
            deployment,
        } = self;
        let mut out = String::new();
        document(&mut out, service_account)?;
        document(&mut out, cluster_role)?;
        document(&mut out, cluster_role_binding)?;
        document(&mut out, service)?;
        document(&mut out, headless_service)?;
        document(&mut out, pod_disruption_budget)?;
        document(&mut out, deployment)?;
        Ok(out)
    }

    /// Reads manifests back from YAML: every document must be one of the objects, each
    /// exactly once (the headless Service is the one with `clusterIP: None`). Empty
    /// documents are skipped.
    pub fn from_yaml(yaml: &str) -> Result<Self, Error> {
        let documents: Vec<serde_json::Value> =
            serde_saphyr::from_str_multiple(yaml).map_err(|e| ManifestError::Yaml {
                reason: first_line(&e.to_string()),
            })?;
        let mut read = Read::default();
        for (index, value) in documents.into_iter().enumerate() {
            if value.is_null() {
                continue;
            }
            let kind = value
                .get("kind")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned();
            match kind.as_str() {
                ServiceAccount::KIND => put(&mut read.service_account, index, value)?,
                ClusterRole::KIND => put(&mut read.cluster_role, index, value)?,
                ClusterRoleBinding::KIND => put(&mut read.cluster_role_binding, index, value)?,
                PodDisruptionBudget::KIND => put(&mut read.pod_disruption_budget, index, value)?,
                Deployment::KIND => put(&mut read.deployment, index, value)?,
                Service::KIND => {
                    let headless = value
                        .pointer("/spec/clusterIP")
                        .and_then(serde_json::Value::as_str)
                        == Some("None");
                    if headless {
                        put(&mut read.headless_service, index, value)?;
                    } else {
                        put(&mut read.service, index, value)?;
                    }
                }
                _ => return Err(ManifestError::UnexpectedKind { index, kind }.into()),
            }
        }
        let Read {
            service_account,
            cluster_role,
            cluster_role_binding,
            service,
            headless_service,
            pod_disruption_budget,
            deployment,
        } = read;
        Ok(Self {
            service_account: present(service_account, ServiceAccount::KIND)?,
            cluster_role: present(cluster_role, ClusterRole::KIND)?,
            cluster_role_binding: present(cluster_role_binding, ClusterRoleBinding::KIND)?,
            service: present(service, "Service (ClusterIP)")?,
            headless_service: present(headless_service, "Service (headless)")?,
            pod_disruption_budget: present(pod_disruption_budget, PodDisruptionBudget::KIND)?,
            deployment: present(deployment, Deployment::KIND)?,
        })
    }
}

/// [`Manifests::build`] then [`Manifests::to_yaml`]: what `identity-ca manifests` prints.
pub fn render(options: &ManifestOptions) -> Result<String, Error> {
    Manifests::build(options)?.to_yaml()
}

/// The ClusterRole (and binding) name Linkerd's chart uses: `linkerd-<ns>-identity`.
pub fn cluster_role_name(namespace: &Namespace) -> String {
    format!("linkerd-{namespace}-identity")
}

/// The labels that pick the identity service's pods: the Deployment's, the Services' and
/// the PodDisruptionBudget's selector, and the topology spread's.
pub fn selector_labels(namespace: &Namespace) -> BTreeMap<String, String> {
    BTreeMap::from([
        (COMPONENT_LABEL.to_owned(), "identity".to_owned()),
        (CONTROL_PLANE_NS_LABEL.to_owned(), namespace.to_string()),
        (
            "app.kubernetes.io/name".to_owned(),
            "identity-ca".to_owned(),
        ),
    ])
}

fn object_labels(namespace: &Namespace) -> BTreeMap<String, String> {
    let mut labels = selector_labels(namespace);
    labels.insert("app.kubernetes.io/part-of".to_owned(), "meshid".to_owned());
    labels
}

fn label_selector(namespace: &Namespace) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector_labels(namespace)),
        ..LabelSelector::default()
    }
}

fn pod_spec(namespace: &Namespace, container: Container, run_as: i64) -> PodSpec {
    PodSpec {
        service_account_name: Some(NAME.to_owned()),
        // TokenReview and Events go through the in-cluster configuration.
        automount_service_account_token: Some(true),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(run_as),
            run_as_group: Some(run_as),
            // The issuer Secret's files belong to this group (mode 0440).
            fs_group: Some(run_as),
            seccomp_profile: Some(runtime_default()),
            ..PodSecurityContext::default()
        }),
        topology_spread_constraints: Some(vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: "kubernetes.io/hostname".to_owned(),
            when_unsatisfiable: "DoNotSchedule".to_owned(),
            label_selector: Some(label_selector(namespace)),
            // A node that is unreachable or cordoned (tainted) does not count, so losing one
            // does not leave its replica unschedulable.
            node_taints_policy: Some("Honor".to_owned()),
            ..TopologySpreadConstraint::default()
        }]),
        containers: vec![container],
        volumes: Some(vec![
            Volume {
                name: ISSUER_VOLUME.to_owned(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(LINKERD_ISSUER_SECRET.to_owned()),
                    default_mode: Some(ISSUER_FILE_MODE),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            },
            Volume {
                name: TRUST_ROOTS_VOLUME.to_owned(),
                config_map: Some(ConfigMapVolumeSource {
                    name: LINKERD_TRUST_ROOTS_CONFIG_MAP.to_owned(),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            },
        ]),
        ..PodSpec::default()
    }
}

fn container(
    namespace: &Namespace,
    image: &Image,
    trust_domain: &TrustDomain,
    scheme: IssuerScheme,
    resources: &ResourceRequirements,
) -> Container {
    let probe = |path: &str| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(ADMIN_PORT_NAME.to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(10),
        failure_threshold: Some(3),
        ..Probe::default()
    };
    let port = |name: &str, port: u16| ContainerPort {
        name: Some(name.to_owned()),
        container_port: i32::from(port),
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    };
    // Whole folders, never subPath: kubelet's updates of the Secret and the ConfigMap
    // (issuer and anchor rotation) reach only whole-folder mounts.
    let mount = |name: &str, path: &str| VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: Some(true),
        ..VolumeMount::default()
    };
    Container {
        name: CONTAINER.to_owned(),
        image: Some(image.to_string()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args: Some(vec![
            "serve".to_owned(),
            format!("--controller-namespace={namespace}"),
            format!("--identity-trust-domain={trust_domain}"),
            format!("--identity-scheme={scheme}"),
            format!("--issuer={LINKERD_ISSUER_DIR}"),
            format!("--trust-anchors={LINKERD_TRUST_ANCHORS}"),
            "--token-validation=tokenreview".to_owned(),
            "--kube-events=true".to_owned(),
            format!("--addr=0.0.0.0:{GRPC_PORT}"),
            format!("--admin-addr=0.0.0.0:{ADMIN_PORT}"),
        ]),
        ports: Some(vec![
            port(GRPC_PORT_NAME, GRPC_PORT),
            port(ADMIN_PORT_NAME, ADMIN_PORT),
        ]),
        readiness_probe: Some(probe(READY_PATH)),
        liveness_probe: Some(Probe {
            initial_delay_seconds: Some(10),
            ..probe(LIVE_PATH)
        }),
        resources: Some(resources.clone()),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            seccomp_profile: Some(runtime_default()),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            mount(ISSUER_VOLUME, LINKERD_ISSUER_DIR),
            mount(TRUST_ROOTS_VOLUME, LINKERD_TRUST_ROOTS_DIR),
        ]),
        ..Container::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        ..SeccompProfile::default()
    }
}

/// Appends `object` to `out` as one YAML document.
fn document(out: &mut String, object: &impl Serialize) -> Result<(), Error> {
    let yaml = serde_saphyr::to_string(object).map_err(|e| ManifestError::Yaml {
        reason: first_line(&e.to_string()),
    })?;
    if !out.is_empty() {
        out.push_str("---\n");
    }
    out.push_str(&yaml);
    Ok(())
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

// === reading back ===

/// The objects found so far by [`Manifests::from_yaml`].
#[derive(Default)]
struct Read {
    service_account: Option<ServiceAccount>,
    cluster_role: Option<ClusterRole>,
    cluster_role_binding: Option<ClusterRoleBinding>,
    service: Option<Service>,
    headless_service: Option<Service>,
    pod_disruption_budget: Option<PodDisruptionBudget>,
    deployment: Option<Deployment>,
}

fn put<T: Resource + DeserializeOwned>(
    slot: &mut Option<T>,
    index: usize,
    value: serde_json::Value,
) -> Result<(), Error> {
    if slot.is_some() {
        return Err(ManifestError::Duplicate {
            index,
            kind: T::KIND,
        }
        .into());
    }
    let object = serde_json::from_value(value).map_err(|e| ManifestError::Document {
        index,
        kind: T::KIND,
        reason: e.to_string(),
    })?;
    *slot = Some(object);
    Ok(())
}

fn present<T>(slot: Option<T>, kind: &'static str) -> Result<T, Error> {
    slot.ok_or_else(|| ManifestError::Missing { kind }.into())
}

// === errors ===

/// Why YAML could not be written, or read back as the identity service's manifests.
/// Messages number documents from 1.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestError {
    /// A document is not a valid object of its kind.
    Document {
        /// Its position, from 0.
        index: usize,
        /// Its `kind`.
        kind: &'static str,
        /// serde_json's text (its error is neither `Clone` nor comparable, and says where in
        /// the object the problem is).
        reason: String,
    },
    /// A second object of a kind there is one of.
    Duplicate {
        /// Its position, from 0.
        index: usize,
        /// Its `kind`.
        kind: &'static str,
    },
    /// No object of a kind the manifests have.
    Missing {
        /// The kind.
        kind: &'static str,
    },
    /// A document of a kind the manifests do not have.
    UnexpectedKind {
        /// Its position, from 0.
        index: usize,
        /// Its `kind` (empty when it has none).
        kind: String,
    },
    /// The YAML could not be written or parsed.
    Yaml {
        /// The YAML library's text, first line only (its error is neither `Clone` nor
        /// comparable).
        reason: String,
    },
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Document {
                index,
                kind,
                reason,
            } => write!(
                f,
                "manifest document {}: not a valid {kind}: {reason}",
                index + 1
            ),
            Self::Duplicate { index, kind } => write!(
                f,
                "manifest document {}: a second {kind}; the manifests have one",
                index + 1
            ),
            Self::Missing { kind } => write!(f, "the manifests have no {kind}"),
            Self::UnexpectedKind { index, kind } if kind.is_empty() => {
                write!(f, "manifest document {}: no kind", index + 1)
            }
            Self::UnexpectedKind { index, kind } => write!(
                f,
                "manifest document {}: unexpected kind {kind} (the identity service's \
                 manifests are a ServiceAccount, ClusterRole, ClusterRoleBinding, two \
                 Services, a PodDisruptionBudget and a Deployment)",
                index + 1
            ),
            Self::Yaml { reason } => write!(f, "manifest YAML: {reason}"),
        }
    }
}

impl core::error::Error for ManifestError {}

impl From<ManifestError> for Error {
    fn from(e: ManifestError) -> Self {
        Self::Manifests(e)
    }
}
