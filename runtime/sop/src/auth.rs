//! Bearer tokens of the admin API: two scopes, compared in constant time.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::state::{Shared, Tokens};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Reads (the read-only or the admin token).
    Read,
    /// Changes (the admin token only).
    Admin,
}

/// The scope a presented bearer token grants, if any. Both tokens are always compared, so
/// the time taken does not say which one nearly matched.
pub fn granted(tokens: &Tokens, presented: &str) -> Option<Scope> {
    let eq = |t: &Option<crate::secret::Secret>| {
        t.as_ref().map_or(subtle::Choice::from(0), |t| {
            t.expose().as_bytes().ct_eq(presented.as_bytes())
        })
    };
    let admin = eq(&tokens.admin);
    let read = eq(&tokens.read);
    if bool::from(admin) {
        Some(Scope::Admin)
    } else if bool::from(read) {
        Some(Scope::Read)
    } else {
        None
    }
}

/// Middleware: refuses a request without a token of `scope` (401 without or with a wrong
/// token, 403 with a read-only token on an admin route).
pub async fn require(
    State((shared, scope)): State<(Shared, Scope)>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let granted = presented.and_then(|p| granted(&shared.live().tokens, p));
    match (granted, scope) {
        (Some(Scope::Admin), _) | (Some(Scope::Read), Scope::Read) => next.run(request).await,
        (Some(Scope::Read), Scope::Admin) => {
            metrics::counter!("sop_admin_refused_total", "reason" => "scope").increment(1);
            crate::admin::error(StatusCode::FORBIDDEN, "this route needs the admin token")
        }
        (None, _) => {
            metrics::counter!("sop_admin_refused_total", "reason" => "token").increment(1);
            let mut r =
                crate::admin::error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            r.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn tokens_grant_their_scope_only() {
        let tokens = Tokens {
            read: Some(Secret::new("reader")),
            admin: Some(Secret::new("boss")),
        };
        assert_eq!(granted(&tokens, "boss"), Some(Scope::Admin));
        assert_eq!(granted(&tokens, "reader"), Some(Scope::Read));
        assert_eq!(granted(&tokens, "reade"), None);
        assert_eq!(granted(&tokens, ""), None);
        assert_eq!(granted(&Tokens::default(), ""), None);
    }
}
