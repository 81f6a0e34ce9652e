//! `manifests`: the YAML read back into typed objects, checked against the server's own
//! routes, ports, flags and mount paths.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use meshid_server::admin;
use meshid_server::linkerd::{
    LINKERD_ISSUER_DIR, LINKERD_TRUST_ANCHORS, LINKERD_TRUST_ANCHORS_KEY, LinkerdMounts,
};
use meshid_server::manifests::{self, ManifestOptions, Manifests};

fn read_back(options: &ManifestOptions) -> Manifests {
    let yaml = manifests::render(options).unwrap();
    let read = Manifests::from_yaml(&yaml).unwrap();
    assert_eq!(read, Manifests::build(options).unwrap());
    read
}

fn container(m: &Manifests) -> &Container {
    let pod = m
        .deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    assert_eq!(pod.containers.len(), 1);
    &pod.containers[0]
}

fn arg<'a>(c: &'a Container, flag: &str) -> &'a str {
    let prefix = format!("{flag}=");
    let found: Vec<_> = c
        .args
        .as_ref()
        .unwrap()
        .iter()
        .filter_map(|a| a.strip_prefix(&prefix))
        .collect();
    assert_eq!(found.len(), 1, "{flag} in {:?}", c.args);
    found[0]
}

#[test]
fn every_object_has_linkerds_name_and_the_namespace() {
    let mut options = ManifestOptions::default();
    options.namespace = "mesh".parse().unwrap();
    let m = read_back(&options);
    let named = [
        (&m.service_account.metadata, "linkerd-identity"),
        (&m.service.metadata, "linkerd-identity"),
        (&m.headless_service.metadata, "linkerd-identity-headless"),
        (&m.pod_disruption_budget.metadata, "linkerd-identity"),
        (&m.deployment.metadata, "linkerd-identity"),
    ];
    for (meta, name) in named {
        assert_eq!(meta.name.as_deref(), Some(name));
        assert_eq!(meta.namespace.as_deref(), Some("mesh"));
    }
    for meta in [&m.cluster_role.metadata, &m.cluster_role_binding.metadata] {
        assert_eq!(meta.name.as_deref(), Some("linkerd-mesh-identity"));
        assert_eq!(meta.namespace, None);
    }
    assert_eq!(m.deployment.spec.as_ref().unwrap().replicas, Some(3));
    let spec = m.headless_service.spec.as_ref().unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    assert_eq!(
        m.service.spec.as_ref().unwrap().type_.as_deref(),
        Some("ClusterIP")
    );
    assert_eq!(arg(container(&m), "--controller-namespace"), "mesh");
}

#[test]
fn rbac_is_exactly_tokenreviews_and_events() {
    let m = read_back(&ManifestOptions::default());
    let rules: Vec<_> = m
        .cluster_role
        .rules
        .as_ref()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.api_groups.clone().unwrap_or_default(),
                r.resources.clone().unwrap_or_default(),
                r.verbs.clone(),
                r.non_resource_urls.clone(),
                r.resource_names.clone(),
            )
        })
        .collect();
    let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        rules,
        [
            (
                s(&["authentication.k8s.io"]),
                s(&["tokenreviews"]),
                s(&["create"]),
                None,
                None
            ),
            (
                s(&[""]),
                s(&["events"]),
                s(&["create", "patch"]),
                None,
                None
            ),
        ]
    );
    let binding = &m.cluster_role_binding;
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(
        Some(&binding.role_ref.name),
        m.cluster_role.metadata.name.as_ref()
    );
    let subjects = binding.subjects.as_ref().unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(
        Some(&subjects[0].name),
        m.service_account.metadata.name.as_ref()
    );
    assert_eq!(subjects[0].namespace, m.service_account.metadata.namespace);
    let pod = m
        .deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    assert_eq!(pod.service_account_name, m.service_account.metadata.name);
}

#[test]
fn oidc_discovery_adds_get_on_the_two_paths_only() {
    let mut options = ManifestOptions::default();
    options.oidc_discovery = true;
    let m = read_back(&options);
    let rules = m.cluster_role.rules.as_ref().unwrap();
    assert_eq!(rules.len(), 3);
    let oidc = &rules[2];
    assert_eq!(
        oidc.non_resource_urls.as_deref(),
        Some(
            &[
                "/.well-known/openid-configuration".to_owned(),
                "/openid/v1/jwks".to_owned()
            ][..]
        )
    );
    assert_eq!(oidc.verbs, ["get"]);
    assert_eq!(oidc.resources, None);
    assert_eq!(oidc.api_groups, None);
}

#[test]
fn probes_ask_the_admin_servers_routes_on_the_ports_it_listens_on() {
    let m = read_back(&ManifestOptions::default());
    let c = container(&m);
    let ports = c.ports.as_ref().unwrap();
    let port_of = |name: &str| {
        ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .unwrap()
            .container_port
    };
    let admin_port = port_of(manifests::ADMIN_PORT_NAME);
    let grpc_port = port_of(manifests::GRPC_PORT_NAME);
    assert_eq!(arg(c, "--admin-addr"), format!("0.0.0.0:{admin_port}"));
    assert_eq!(arg(c, "--addr"), format!("0.0.0.0:{grpc_port}"));
    assert_eq!((grpc_port, admin_port), (8080, 9990));
    for (probe, path) in [
        (&c.readiness_probe, admin::READY_PATH),
        (&c.liveness_probe, admin::LIVE_PATH),
    ] {
        let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some(path));
        assert!(admin::ROUTES.contains(&path));
        assert_eq!(
            get.port,
            IntOrString::String(manifests::ADMIN_PORT_NAME.to_owned())
        );
    }
    for service in [&m.service, &m.headless_service] {
        let sp = &service.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
        assert_eq!(sp.port, grpc_port);
        assert_eq!(
            sp.target_port,
            Some(IntOrString::String(manifests::GRPC_PORT_NAME.to_owned()))
        );
    }
    assert_eq!(c.args.as_ref().unwrap()[0], "serve");
    assert_eq!(arg(c, "--token-validation"), "tokenreview");
}

/// The Secret and ConfigMap mounted as the pod mounts them are what `LinkerdMounts` finds,
/// and what the arguments name.
#[test]
fn the_mounts_are_where_linkerd_mounts_looks() {
    let m = read_back(&ManifestOptions::default());
    let c = container(&m);
    let pod = m
        .deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    for mount in c.volume_mounts.as_ref().unwrap() {
        assert_eq!(mount.read_only, Some(true));
        assert_eq!(mount.sub_path, None, "a subPath mount never sees rotation");
        let dir = root.path().join(mount.mount_path.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).unwrap();
        let volume = pod
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == mount.name)
            .unwrap();
        if let Some(config_map) = &volume.config_map {
            assert_eq!(config_map.name, "linkerd-identity-trust-roots");
            assert_eq!(config_map.items, None, "every key is projected");
            std::fs::write(dir.join(LINKERD_TRUST_ANCHORS_KEY), "anchors").unwrap();
        } else {
            let secret = volume.secret.as_ref().unwrap();
            assert_eq!(
                secret.secret_name.as_deref(),
                Some("linkerd-identity-issuer")
            );
        }
    }
    let found = LinkerdMounts::find_under(root.path()).expect("issuer mounted");
    assert_eq!(
        found.issuer,
        root.path().join(LINKERD_ISSUER_DIR.trim_start_matches('/'))
    );
    assert_eq!(
        found.trust_anchors,
        Some(
            root.path()
                .join(LINKERD_TRUST_ANCHORS.trim_start_matches('/'))
        )
    );
    assert_eq!(arg(c, "--issuer"), LINKERD_ISSUER_DIR);
    assert_eq!(arg(c, "--trust-anchors"), LINKERD_TRUST_ANCHORS);
}

#[test]
fn the_container_is_locked_down() {
    let m = read_back(&ManifestOptions::default());
    let c = container(&m);
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(
        sc.capabilities.as_ref().unwrap().drop.as_deref(),
        Some(&["ALL".to_owned()][..])
    );
    assert_eq!(sc.capabilities.as_ref().unwrap().add, None);
    assert_eq!(sc.seccomp_profile.as_ref().unwrap().type_, "RuntimeDefault");
    let pod = m
        .deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let psc = pod.security_context.as_ref().unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_ne!(psc.run_as_user, Some(0));
    let resources = c.resources.as_ref().unwrap();
    for key in ["cpu", "memory"] {
        assert!(resources.requests.as_ref().unwrap().contains_key(key));
        assert!(resources.limits.as_ref().unwrap().contains_key(key));
    }
}

#[test]
fn selectors_pick_the_pods_and_spread_them_over_nodes() {
    let m = read_back(&ManifestOptions::default());
    let spec = m.deployment.spec.as_ref().unwrap();
    let pod_labels = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();
    let picks = |selector: &std::collections::BTreeMap<String, String>| {
        assert!(!selector.is_empty());
        selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
    };
    assert!(picks(spec.selector.match_labels.as_ref().unwrap()));
    let pdb = m.pod_disruption_budget.spec.as_ref().unwrap();
    assert!(picks(
        pdb.selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()
    ));
    assert_eq!(pdb.max_unavailable, Some(IntOrString::Int(1)));
    for service in [&m.service, &m.headless_service] {
        assert!(picks(
            service.spec.as_ref().unwrap().selector.as_ref().unwrap()
        ));
    }
    let spread = spec
        .template
        .spec
        .as_ref()
        .unwrap()
        .topology_spread_constraints
        .as_ref()
        .unwrap();
    assert_eq!(spread.len(), 1);
    assert_eq!(spread[0].topology_key, "kubernetes.io/hostname");
    assert_eq!(spread[0].max_skew, 1);
    assert!(picks(
        spread[0]
            .label_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()
    ));
}

#[test]
fn bad_options_are_refused_in_one_line() {
    let mut options = ManifestOptions::default();
    options.replicas = 0;
    assert_eq!(
        Manifests::build(&options).unwrap_err().to_string(),
        "invalid manifest option replicas: 0 is not between 1 and 100"
    );
    let image = "Registry/Identity CA"
        .parse::<manifests::Image>()
        .unwrap_err()
        .to_string();
    assert!(
        image.starts_with("invalid image 'Registry/Identity CA': "),
        "{image}"
    );
    assert_eq!(image.lines().count(), 1, "{image}");
    assert!("ghcr.io/meshid/identity-ca@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".parse::<manifests::Image>().is_ok());
}

#[test]
fn yaml_that_is_not_the_manifests_is_refused() {
    let yaml = manifests::render(&ManifestOptions::default()).unwrap();
    let extra = format!("{yaml}---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n");
    assert_eq!(
        Manifests::from_yaml(&extra).unwrap_err().to_string(),
        "manifest document 8: unexpected kind Secret (the identity service's manifests are a \
         ServiceAccount, ClusterRole, ClusterRoleBinding, two Services, a PodDisruptionBudget \
         and a Deployment)"
    );
    let first = yaml.split("---\n").next().unwrap();
    let twice = format!("{yaml}---\n{first}");
    assert_eq!(
        Manifests::from_yaml(&twice).unwrap_err().to_string(),
        "manifest document 8: a second ServiceAccount; the manifests have one"
    );
    let rest = yaml.split_once("---\n").unwrap().1;
    assert_eq!(
        Manifests::from_yaml(rest).unwrap_err().to_string(),
        "the manifests have no ServiceAccount"
    );
}
