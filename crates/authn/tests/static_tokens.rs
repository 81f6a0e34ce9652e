//! The static token file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use meshid_authn::{Authenticator, Error, ErrorKind, StaticAuthenticator};
use meshid_policy::ServiceAccount;

const FILE: &str = "
# token,namespace,serviceaccount[,pod-name[,pod-uid]]
dev-token-web, emojivoto, web

dev-token-voting,emojivoto,voting,voting-5f7d,3b1c1a4e-0000-4000-8000-000000000001
";

#[tokio::test]
async fn maps_listed_tokens_to_service_accounts() {
    let authn = StaticAuthenticator::parse(FILE).unwrap();
    assert_eq!(authn.len(), 2);
    let who = authn.authenticate(b"dev-token-web\n").await.unwrap();
    assert_eq!(
        who.service_account,
        ServiceAccount::new("emojivoto", "web").unwrap()
    );
    assert_eq!(who.pod_name, None);
    let who = authn.authenticate(b"dev-token-voting").await.unwrap();
    assert_eq!(who.pod_name.as_deref(), Some("voting-5f7d"));
    assert_eq!(
        who.pod_uid.as_deref(),
        Some("3b1c1a4e-0000-4000-8000-000000000001")
    );

    let err = authn.authenticate(b"dev-token-unknown").await.unwrap_err();
    assert_eq!(err, Error::NotAuthenticated);
    assert_eq!(err.kind(), ErrorKind::NotAuthenticated);
    assert_eq!(
        err.to_string(),
        "authentication token could not be authenticated"
    );
    // Prefixes of a listed token are not it.
    assert!(authn.authenticate(b"dev-token").await.is_err());
    assert_eq!(
        authn.authenticate(b"").await.unwrap_err().kind(),
        ErrorKind::InvalidToken
    );
    // Debug shows no token.
    assert_eq!(format!("{authn:?}"), "StaticAuthenticator { tokens: 2 }");
}

#[test]
fn refuses_bad_lines_naming_the_line_not_the_token() {
    let err = |text: &str| StaticAuthenticator::parse(text).unwrap_err().to_string();
    assert_eq!(
        err("secret-a,ns,sa\nsecret-a,ns,other\n"),
        "invalid static token file, line 2: the token is already listed on line 1"
    );
    assert_eq!(
        err("secret-a,ns\n"),
        "invalid static token file, line 1: expected \
         token,namespace,serviceaccount[,pod-name[,pod-uid]], found 2 fields"
    );
    let msg = err("# c\nsecret-a,Not_A_Namespace,sa\n");
    assert!(
        msg.starts_with("invalid static token file, line 2: "),
        "{msg}"
    );
    assert!(!msg.contains("secret-a"), "{msg}");
    assert_eq!(
        err(",ns,sa\n"),
        "invalid static token file, line 1: the token: token is empty"
    );
    assert!(
        StaticAuthenticator::parse("# nothing\n\n")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn reads_files() {
    let dir = std::env::temp_dir().join(format!("meshid-authn-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tokens.csv");
    std::fs::write(&path, "t1,ns,sa\nt2,ns\n").unwrap();
    assert_eq!(
        StaticAuthenticator::from_file(&path)
            .unwrap_err()
            .to_string(),
        format!(
            "invalid static token file {}, line 2: expected \
             token,namespace,serviceaccount[,pod-name[,pod-uid]], found 2 fields",
            path.display()
        )
    );
    std::fs::write(&path, FILE).unwrap();
    assert_eq!(StaticAuthenticator::from_file(&path).unwrap().len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
    let e = StaticAuthenticator::from_file(&path).unwrap_err();
    assert!(matches!(e, Error::ReadFile { .. }), "{e:?}");
}
