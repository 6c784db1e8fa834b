//! The network policy of one plugin: which URLs it may fetch, where they really go, and which
//! addresses may be connected to.
//!
//! A URL is allowed when its host is in the manifest's `hosts` and in the operator's
//! `allow_hosts` (all manifest hosts when unset). The operator may re-point a host to another
//! base URL; the plugin keeps using the real URL and the host rewrites it here. Whatever the
//! name resolves to must be a public address, or lie in the operator's `allow_private` ranges.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use hyper::Uri;
use serde::{Deserialize, Serialize};

use crate::address::{Cidr, non_public_reason};
use crate::manifest::is_host_name;

/// The operator's network settings for one plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Manifest hosts the plugin may call; `None` allows every manifest host.
    pub allow_hosts: Option<Vec<String>>,
    /// Manifest host → base URL its requests go to instead, e.g. `qyapi.weixin.qq.com` →
    /// `http://127.0.0.1:9100` for the local emulator.
    pub repoint: BTreeMap<String, String>,
    /// Non-public address ranges this plugin may reach anyway (`127.0.0.1/32` for an emulator on
    /// loopback). Empty by default: loopback, private, link-local and the like are refused.
    pub allow_private: Vec<Cidr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn parse(s: Option<&str>) -> Option<Self> {
        match s {
            Some("http") => Some(Self::Http),
            Some("https") => Some(Self::Https),
            _ => None,
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

/// Where a re-pointed host really goes.
#[derive(Debug, Clone)]
struct Base {
    scheme: Scheme,
    host: String,
    port: u16,
    path_prefix: String,
}

/// Where one request really goes, after the policy allowed and rewrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub scheme: Scheme,
    /// Name to resolve (or IP literal) and TLS server name.
    pub host: String,
    pub port: u16,
    /// Path and query to send.
    pub path_and_query: String,
    /// `Host` header value.
    pub authority: String,
    /// Whether the operator re-pointed this host (only then may `allow_private` apply).
    pub repointed: bool,
}

/// The checked policy of one plugin.
#[derive(Debug, Clone)]
pub(crate) struct EgressPolicy {
    /// Allowed manifest host → optional re-pointing.
    routes: BTreeMap<String, Option<Base>>,
    allow_private: Vec<Cidr>,
}

impl EgressPolicy {
    /// A policy that allows nothing (used while `describe` runs).
    pub fn deny_all() -> Self {
        Self {
            routes: BTreeMap::new(),
            allow_private: Vec::new(),
        }
    }

    /// Combines the manifest's hosts with the operator's config; every problem is reported.
    pub fn new(manifest_hosts: &[String], config: &NetworkConfig) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let declared: BTreeSet<&str> = manifest_hosts.iter().map(String::as_str).collect();
        let allowed: Vec<&str> = match &config.allow_hosts {
            None => declared.iter().copied().collect(),
            Some(list) => {
                for h in list {
                    if !declared.contains(h.as_str()) {
                        problems.push(format!(
                            "allow_hosts names {h:?}, which the manifest does not declare"
                        ));
                    }
                }
                list.iter()
                    .map(String::as_str)
                    .filter(|h| declared.contains(h))
                    .collect()
            }
        };
        let mut routes: BTreeMap<String, Option<Base>> =
            allowed.iter().map(|h| ((*h).to_owned(), None)).collect();
        for (host, base) in &config.repoint {
            match routes.get_mut(host) {
                None => problems.push(format!(
                    "repoint names {host:?}, which is not an allowed manifest host"
                )),
                Some(slot) => match parse_base(base) {
                    Ok(b) => *slot = Some(b),
                    Err(e) => problems.push(format!("repoint {host:?}: {e}")),
                },
            }
        }
        if problems.is_empty() {
            Ok(Self {
                routes,
                allow_private: config.allow_private.clone(),
            })
        } else {
            Err(problems)
        }
    }

    /// Checks a URL as the plugin wrote it and says where it really goes.
    pub fn route(&self, url: &str) -> Result<Target, String> {
        let uri: Uri = url.parse().map_err(|e| format!("bad URL {url:?}: {e}"))?;
        let scheme = Scheme::parse(uri.scheme_str())
            .ok_or_else(|| format!("URL {url:?} must be absolute http:// or https://"))?;
        let authority = uri
            .authority()
            .ok_or_else(|| format!("URL {url:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!("URL {url:?} must not carry credentials"));
        }
        let host = authority.host().to_ascii_lowercase();
        if uri.port_u16().is_some_and(|p| p != scheme.default_port()) {
            return Err(format!(
                "URL {url:?}: only the scheme's default port is allowed"
            ));
        }
        let Some(route) = self.routes.get(&host) else {
            return Err(format!("host {host:?} is not allowed for this plugin"));
        };
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
        Ok(match route {
            None => Target {
                scheme,
                authority: host.clone(),
                host,
                port: scheme.default_port(),
                path_and_query: path_and_query.to_owned(),
                repointed: false,
            },
            Some(base) => Target {
                scheme: base.scheme,
                authority: if base.port == base.scheme.default_port() {
                    base.host.clone()
                } else {
                    format!("{}:{}", base.host, base.port)
                },
                host: base.host.clone(),
                port: base.port,
                path_and_query: format!("{}{path_and_query}", base.path_prefix),
                repointed: true,
            },
        })
    }

    /// Why `ip` may not be connected to, or `None` when it may. The operator's `allow_private`
    /// ranges only cover destinations the operator chose (re-pointed hosts): a plugin that
    /// names `127.0.0.1` in its manifest does not inherit the emulator's allowance.
    pub fn address_refusal(&self, ip: IpAddr, repointed: bool) -> Option<&'static str> {
        let reason = non_public_reason(ip)?;
        if repointed && self.allow_private.iter().any(|c| c.contains(ip)) {
            None
        } else {
            Some(reason)
        }
    }
}

fn parse_base(base: &str) -> Result<Base, String> {
    let uri: Uri = base
        .parse()
        .map_err(|e| format!("bad base URL {base:?}: {e}"))?;
    let scheme = Scheme::parse(uri.scheme_str())
        .ok_or_else(|| format!("base URL {base:?} must start with http:// or https://"))?;
    let authority = uri
        .authority()
        .ok_or_else(|| format!("base URL {base:?} has no host"))?;
    if authority.as_str().contains('@') || uri.query().is_some() {
        return Err(format!(
            "base URL {base:?} must not carry credentials or a query"
        ));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if host.parse::<IpAddr>().is_err() && !is_host_name(&host) && host != "localhost" {
        return Err(format!("base URL {base:?} has an invalid host"));
    }
    Ok(Base {
        scheme,
        port: uri.port_u16().unwrap_or(scheme.default_port()),
        path_prefix: uri.path().trim_end_matches('/').to_owned(),
        host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<String> {
        vec!["qyapi.weixin.qq.com".into(), "open.douyin.com".into()]
    }

    #[test]
    fn manifest_hosts_pass_and_others_are_refused() {
        let p = EgressPolicy::new(&hosts(), &NetworkConfig::default()).unwrap();
        let t = p
            .route("https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=x")
            .unwrap();
        assert_eq!(t.host, "qyapi.weixin.qq.com");
        assert_eq!(t.port, 443);
        assert_eq!(t.path_and_query, "/cgi-bin/gettoken?corpid=x");
        for bad in [
            "https://evil.example.com/",
            "https://qyapi.weixin.qq.com.evil.com/",
            "https://user:pw@qyapi.weixin.qq.com/",
            "https://qyapi.weixin.qq.com:8443/",
            "ftp://qyapi.weixin.qq.com/",
            "/relative",
            "http://127.0.0.1/",
        ] {
            assert!(p.route(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn operator_allow_list_narrows_the_manifest() {
        let config = NetworkConfig {
            allow_hosts: Some(vec!["open.douyin.com".into()]),
            ..NetworkConfig::default()
        };
        let p = EgressPolicy::new(&hosts(), &config).unwrap();
        assert!(p.route("https://open.douyin.com/x").is_ok());
        assert!(p.route("https://qyapi.weixin.qq.com/x").is_err());
    }

    #[test]
    fn repointed_hosts_are_rewritten() {
        let config = NetworkConfig {
            repoint: [(
                "qyapi.weixin.qq.com".to_owned(),
                "http://127.0.0.1:9100/wecom/".to_owned(),
            )]
            .into(),
            ..NetworkConfig::default()
        };
        let p = EgressPolicy::new(&hosts(), &config).unwrap();
        let t = p
            .route("https://qyapi.weixin.qq.com/cgi-bin/gettoken?a=1")
            .unwrap();
        assert_eq!(
            t,
            Target {
                scheme: Scheme::Http,
                host: "127.0.0.1".into(),
                port: 9100,
                path_and_query: "/wecom/cgi-bin/gettoken?a=1".into(),
                authority: "127.0.0.1:9100".into(),
                repointed: true,
            }
        );
    }

    #[test]
    fn bad_config_lists_every_problem() {
        let config = NetworkConfig {
            allow_hosts: Some(vec!["api.example.com".into()]),
            repoint: [
                ("open.douyin.com".to_owned(), "ftp://x".to_owned()),
                (
                    "nowhere.example.com".to_owned(),
                    "http://127.0.0.1".to_owned(),
                ),
            ]
            .into(),
            allow_private: vec![],
        };
        let problems = EgressPolicy::new(&hosts(), &config).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:#?}");
    }

    #[test]
    fn private_addresses_need_an_explicit_allowance() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let p = EgressPolicy::new(&hosts(), &NetworkConfig::default()).unwrap();
        assert!(p.address_refusal(ip("127.0.0.1"), true).is_some());
        assert!(p.address_refusal(ip("1.1.1.1"), false).is_none());
        let config = NetworkConfig {
            allow_private: vec!["127.0.0.1/32".parse().unwrap()],
            ..NetworkConfig::default()
        };
        let p = EgressPolicy::new(&hosts(), &config).unwrap();
        assert!(p.address_refusal(ip("127.0.0.1"), true).is_none());
        // The allowance covers only destinations the operator chose by re-pointing.
        assert!(p.address_refusal(ip("127.0.0.1"), false).is_some());
        assert!(p.address_refusal(ip("127.0.0.2"), true).is_some());
        assert!(p.address_refusal(ip("10.0.0.1"), true).is_some());
    }
}
