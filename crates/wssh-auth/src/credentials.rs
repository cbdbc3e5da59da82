//! What a client presents, and the textual forms it arrives in.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use wssh_domain::TokenIdentifier;

use crate::AuthError;
use crate::secret::TOKEN_PREFIX;

/// Credentials presented by a client, before they are checked.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password.
    Password {
        /// The user name as given.
        username: String,
        /// The password as given.
        password: String,
        /// The current TOTP code, for users with two-factor authentication on.
        otp_code: Option<String>,
    },
    /// An access JWT of a login.
    Jwt(String),
    /// An access token secret, with its identifier when the client sent one.
    Token {
        /// The token's public identifier, if given.
        identifier: Option<TokenIdentifier>,
        /// The secret.
        secret: String,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Password { username, .. } => {
                f.debug_struct("Password").field("username", username).finish_non_exhaustive()
            }
            Credentials::Token { identifier, .. } => {
                f.debug_struct("Token").field("identifier", identifier).finish_non_exhaustive()
            }
            Credentials::Jwt(_) => f.write_str("Jwt(<redacted>)"),
        }
    }
}

/// go_ws_sh's `authorization` object, as found in request bodies, in base64 inside
/// `Authorization: Bearer`, and as a query string in `Sec-WebSocket-Protocol`. Every field is
/// optional; `type` matters only when it is `token`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct AuthorizationObject {
    /// `password` or `token`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The user name.
    pub username: String,
    /// The password, in password mode.
    pub password: String,
    /// The token secret, in token mode.
    pub token: String,
    /// The token identifier, in token mode (also read under the seed's misspelling
    /// `identifer`).
    #[serde(alias = "identifer")]
    pub identifier: String,
    /// The current TOTP code, in password mode, for users with two-factor authentication on.
    #[serde(alias = "otpCode")]
    pub otp_code: String,
}

impl fmt::Debug for AuthorizationObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationObject")
            .field("type", &self.kind)
            .field("username", &self.username)
            .field("identifier", &self.identifier)
            .finish_non_exhaustive()
    }
}

impl AuthorizationObject {
    /// The credentials this object carries, following go_ws_sh: token mode when `type` is
    /// `token` and a token is given; a bare token without a type is token mode too; otherwise
    /// password mode. A token of three dot-separated parts that is not a `wssh_` secret is a
    /// login's access JWT (browsers can send nothing else in `Sec-WebSocket-Protocol`). An
    /// object with nothing in it is [`AuthError::MissingCredentials`].
    pub fn into_credentials(self) -> Result<Credentials, AuthError> {
        let token_mode = (self.kind == "token" || self.password.is_empty()) && !self.token.is_empty();
        if token_mode {
            if is_jwt(&self.token) {
                return Ok(Credentials::Jwt(self.token));
            }
            let identifier = (!self.identifier.is_empty()).then_some(TokenIdentifier(self.identifier));
            return Ok(Credentials::Token { identifier, secret: self.token });
        }
        if self.username.is_empty() && self.password.is_empty() {
            return Err(AuthError::MissingCredentials);
        }
        let otp_code = (!self.otp_code.is_empty()).then_some(self.otp_code);
        Ok(Credentials::Password { username: self.username, password: self.password, otp_code })
    }
}

/// Whether `token` has the shape of a JWT: three dot-separated parts, not an opaque token.
fn is_jwt(token: &str) -> bool {
    !token.starts_with(TOKEN_PREFIX) && token.bytes().filter(|byte| *byte == b'.').count() == 2
}

impl Credentials {
    /// Reads the value of an `Authorization` header:
    ///
    /// * `Basic base64(user:password)`;
    /// * `Bearer wssh_…`, an opaque access token;
    /// * `Bearer base64(JSON authorization object)`, go_ws_sh's form, also without `Bearer `;
    /// * `Bearer <jwt>` or a bare JWT, an access token of a login.
    pub fn from_authorization_header(value: &str) -> Result<Credentials, AuthError> {
        let value = value.trim();
        if let Some(encoded) = strip_scheme(value, "Basic") {
            let decoded = STANDARD.decode(encoded.trim()).map_err(|_| AuthError::MalformedCredentials)?;
            let decoded = String::from_utf8(decoded).map_err(|_| AuthError::MalformedCredentials)?;
            let (username, password) = decoded.split_once(':').ok_or(AuthError::MalformedCredentials)?;
            return Ok(Credentials::Password {
                username: username.to_owned(),
                password: password.to_owned(),
                otp_code: None,
            });
        }
        let bearer = strip_scheme(value, "Bearer").unwrap_or(value).trim();
        // A JWT: three base64url parts (alist clients send it without `Bearer`).
        if is_jwt(bearer) {
            return Ok(Credentials::Jwt(bearer.to_owned()));
        }
        if bearer.starts_with(TOKEN_PREFIX) {
            return Ok(Credentials::Token { identifier: None, secret: bearer.to_owned() });
        }
        let decoded = STANDARD.decode(bearer).map_err(|_| AuthError::MalformedCredentials)?;
        let object: AuthorizationObject =
            serde_json::from_slice(&decoded).map_err(|_| AuthError::MalformedCredentials)?;
        object.into_credentials()
    }
}

/// The rest of `value` after `scheme` and a space, the scheme matched case-insensitively.
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (head, rest) = value.split_once(' ')?;
    head.eq_ignore_ascii_case(scheme).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer_json(json: &str) -> String {
        format!("Bearer {}", STANDARD.encode(json))
    }

    #[test]
    fn header_forms() {
        assert_eq!(
            Credentials::from_authorization_header(&format!("Basic {}", STANDARD.encode("admin:p:w"))).unwrap(),
            Credentials::Password { username: "admin".into(), password: "p:w".into(), otp_code: None }
        );
        assert_eq!(
            Credentials::from_authorization_header("Bearer wssh_abc").unwrap(),
            Credentials::Token { identifier: None, secret: "wssh_abc".into() }
        );
        assert_eq!(
            Credentials::from_authorization_header(&bearer_json(
                r#"{"type":"token","token":"t","identifier":"42","username":"x"}"#
            ))
            .unwrap(),
            Credentials::Token { identifier: Some(TokenIdentifier("42".into())), secret: "t".into() }
        );
        assert_eq!(
            Credentials::from_authorization_header(&bearer_json(
                r#"{"type":"password","username":"a","password":"b"}"#
            ))
            .unwrap(),
            Credentials::Password { username: "a".into(), password: "b".into(), otp_code: None }
        );
        assert_eq!(
            Credentials::from_authorization_header(&bearer_json(
                r#"{"type":"password","username":"a","password":"b","otp_code":"123456"}"#
            ))
            .unwrap(),
            Credentials::Password { username: "a".into(), password: "b".into(), otp_code: Some("123456".into()) }
        );
        // A JWT in the token field (how a browser passes one in the WebSocket subprotocol).
        let object = AuthorizationObject { kind: "token".into(), token: "a.b.c".into(), ..Default::default() };
        assert_eq!(object.into_credentials().unwrap(), Credentials::Jwt("a.b.c".into()));
        // go_ws_sh also accepts the base64 JSON without a scheme.
        let bare = STANDARD.encode(r#"{"username":"a","password":"b"}"#);
        assert!(matches!(Credentials::from_authorization_header(&bare), Ok(Credentials::Password { .. })));
        assert!(matches!(Credentials::from_authorization_header("Bearer !!!"), Err(AuthError::MalformedCredentials)));
        assert!(matches!(
            Credentials::from_authorization_header(&format!("Basic {}", STANDARD.encode("nocolon"))),
            Err(AuthError::MalformedCredentials)
        ));
        assert!(matches!(
            Credentials::from_authorization_header(&bearer_json("{}")),
            Err(AuthError::MissingCredentials)
        ));
    }

    #[test]
    fn token_mode_carries_a_jwt() {
        let object =
            |token: &str| AuthorizationObject { kind: "token".into(), token: token.into(), ..Default::default() };
        assert_eq!(object("aaa.bbb.ccc").into_credentials().unwrap(), Credentials::Jwt("aaa.bbb.ccc".into()));
        // A bare token without a type is token mode too.
        let bare = AuthorizationObject { token: "x.y.z".into(), ..Default::default() };
        assert_eq!(bare.into_credentials().unwrap(), Credentials::Jwt("x.y.z".into()));
        // Access token secrets stay tokens, whatever their dots.
        assert_eq!(
            object("wssh_a.b.c").into_credentials().unwrap(),
            Credentials::Token { identifier: None, secret: "wssh_a.b.c".into() }
        );
        assert!(matches!(object("a.b").into_credentials().unwrap(), Credentials::Token { .. }));
        assert!(matches!(object("a.b.c.d").into_credentials().unwrap(), Credentials::Token { .. }));
    }

    #[test]
    fn debug_hides_secrets() {
        let credentials =
            Credentials::Password { username: "a".into(), password: "hunter2".into(), otp_code: Some("123456".into()) };
        assert!(!format!("{credentials:?}").contains("hunter2"));
        assert!(!format!("{credentials:?}").contains("123456"));
        let token = Credentials::Token { identifier: None, secret: "wssh_secret".into() };
        assert!(!format!("{token:?}").contains("secret\""));
    }
}
