//! The identity service's command lines: [`identity_ca`] (the `identity-ca` binary), and the
//! helpers they share.

pub mod identity_ca;

/// Rewrites Linkerd's single-dash long flags (`-identity-trust-domain=cluster.local`,
/// `-log-level info`) to the double-dash form (`--identity-trust-domain=...`), so the Linkerd
/// chart's arguments work unchanged. Single-letter flags (`-h`), `--` flags, negative numbers
/// and plain values are left alone; so is everything after a bare `--`.
pub fn normalize_linkerd_flags<I, S>(args: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut after_separator = false;
    args.into_iter()
        .map(Into::into)
        .enumerate()
        .map(|(i, arg)| {
            if i == 0 || after_separator {
                return arg;
            }
            if arg == "--" {
                after_separator = true;
                return arg;
            }
            let name = arg.strip_prefix('-').filter(|rest| !rest.starts_with('-'));
            match name {
                Some(rest)
                    if rest.split('=').next().is_some_and(|flag| {
                        flag.len() > 1 && flag.starts_with(|c: char| c.is_ascii_alphabetic())
                    }) =>
                {
                    format!("-{arg}")
                }
                _ => arg,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linkerd_spellings_become_long_flags() {
        let args = normalize_linkerd_flags([
            "identity-ca",
            "-identity-trust-domain=cluster.local",
            "-log-level",
            "info",
            "--addr",
            "127.0.0.1:8080",
            "-h",
            "-5",
            "serve",
            "--",
            "-not-a-flag",
        ]);
        assert_eq!(
            args,
            [
                "identity-ca",
                "--identity-trust-domain=cluster.local",
                "--log-level",
                "info",
                "--addr",
                "127.0.0.1:8080",
                "-h",
                "-5",
                "serve",
                "--",
                "-not-a-flag",
            ]
        );
    }
}
