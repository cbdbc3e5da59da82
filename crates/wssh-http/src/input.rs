//! Reading the loosely typed input of the seed 002 and seed 004 surfaces: JSON bodies whose
//! numbers may arrive as numeric strings (the seeds' samples send `"0"`), query strings, lists
//! of permission names, the `Authorization` header, and the password-login body every login
//! route shares.

use std::net::SocketAddr;

use http::HeaderMap;
use http::header;
use serde_json::Value;
use wssh_auth::{AuthError, Credentials, Principal};
use wssh_domain::{Permission, PermissionSet};

use crate::AppState;
use crate::error::ApiError;

/// A JSON object, as a request body.
pub(crate) type Object = serde_json::Map<String, Value>;

/// Parses a body that must be a JSON object. An empty body is an empty object; anything else
/// that is not an object is 400.
pub(crate) fn object_body(body: &[u8]) -> Result<Object, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Object::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ApiError::bad_request("The request body must be a JSON object")),
        Err(error) => Err(ApiError::bad_request(format!("Malformed JSON body: {error}"))),
    }
}

/// The value of the first of `names` that `object` holds with a non-null value.
pub(crate) fn field<'a>(object: &'a Object, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|name| object.get(*name).filter(|value| !value.is_null()))
}

/// Reads an integer given as a JSON number or a numeric string; an empty string is absent.
pub(crate) fn integer(value: &Value, label: &str) -> Result<Option<i64>, ApiError> {
    let refuse = || ApiError::bad_request(format!("{label} must be an integer"));
    match value {
        Value::Null => Ok(None),
        Value::Number(number) => number.as_i64().map(Some).ok_or_else(refuse),
        Value::String(text) if text.trim().is_empty() => Ok(None),
        Value::String(text) => text.trim().parse::<i64>().map(Some).map_err(|_| refuse()),
        _ => Err(refuse()),
    }
}

/// The integer field under the first of `names`, if any.
pub(crate) fn integer_field(object: &Object, names: &[&str], label: &str) -> Result<Option<i64>, ApiError> {
    field(object, names).map_or(Ok(None), |value| integer(value, label))
}

/// The string field under the first of `names`, if any; any other JSON type is 400.
pub(crate) fn text_field(object: &Object, names: &[&str], label: &str) -> Result<Option<String>, ApiError> {
    match field(object, names) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(ApiError::bad_request(format!("{label} must be a string"))),
    }
}

/// The boolean field under the first of `names`, if any: `true`/`false`, `1`/`0`, or those as
/// strings.
pub(crate) fn bool_field(object: &Object, names: &[&str], label: &str) -> Result<Option<bool>, ApiError> {
    let refuse = || ApiError::bad_request(format!("{label} must be a boolean"));
    match field(object, names) {
        None => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(Value::Number(number)) => match number.as_i64() {
            Some(0) => Ok(Some(false)),
            Some(1) => Ok(Some(true)),
            _ => Err(refuse()),
        },
        Some(Value::String(text)) => match text.trim() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(refuse()),
        },
        Some(_) => Err(refuse()),
    }
}

/// Checks a short free-text field: at most `max` characters, no control characters.
pub(crate) fn check_text(label: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.chars().count() > max {
        return Err(ApiError::bad_request(format!("{label} is too long (at most {max} characters)")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ApiError::bad_request(format!("{label} contains a control character")));
    }
    Ok(())
}

/// Permission names, given as one string (names separated by commas or white space), as an
/// array of such strings, or as nested arrays of them. An unknown name is 400.
pub(crate) fn permission_names(value: &Value, label: &str) -> Result<Vec<Permission>, ApiError> {
    let mut found = Vec::new();
    collect_permissions(value, label, &mut found)?;
    Ok(found)
}

fn collect_permissions(value: &Value, label: &str, found: &mut Vec<Permission>) -> Result<(), ApiError> {
    match value {
        Value::Null => Ok(()),
        Value::String(text) => {
            for name in text.split(|c: char| c == ',' || c.is_whitespace()).filter(|name| !name.is_empty()) {
                found.push(parse_permission(name)?);
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|item| collect_permissions(item, label, found)),
        _ => Err(ApiError::bad_request(format!("{label} must be a list of permission names"))),
    }
}

/// One permission by its name; an unknown name is 400 naming it.
pub(crate) fn parse_permission(name: &str) -> Result<Permission, ApiError> {
    name.trim().parse::<Permission>().map_err(|_| {
        let known: Vec<&str> = Permission::ALL.iter().map(|permission| permission.as_str()).collect();
        ApiError::bad_request(format!("Unknown permission {:?}; known: {}", name.trim(), known.join(", ")))
    })
}

/// The names of a set, comma-separated.
pub(crate) fn comma_names(permissions: PermissionSet) -> String {
    permissions.iter().map(Permission::as_str).collect::<Vec<_>>().join(",")
}

/// A parsed query string.
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `query` (the part after `?`, percent-decoded, `+` as a space).
    pub(crate) fn parse(query: Option<&str>) -> Query {
        Query(form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect())
    }

    /// The first value of `name`, if present.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// Every value of `name` (also given as `name[]`), in order.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        let bracketed = format!("{name}[]");
        self.0.iter().filter(|(key, _)| *key == name || *key == bracketed).map(|(_, value)| value.as_str()).collect()
    }

    /// Whether `name` (or `name[]`) is present at all.
    pub(crate) fn has(&self, name: &str) -> bool {
        !self.all(name).is_empty()
    }

    /// The first value of `name` as an integer; absent or empty is `None`, anything else 400.
    pub(crate) fn integer(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => integer(&Value::String(value.to_owned()), name),
        }
    }
}

/// The body of a password login, on every surface that has one (alist's `/api/auth/login*`,
/// seed 004's `/auth/login`): missing fields are empty.
#[derive(serde::Deserialize)]
pub(crate) struct LoginBody {
    /// The user name.
    #[serde(default)]
    pub(crate) username: String,
    /// The password (or alist's digest of it).
    #[serde(default)]
    pub(crate) password: String,
    /// The TOTP code, for users with two-factor authentication on.
    #[serde(default, alias = "otpCode")]
    pub(crate) otp_code: String,
}

/// Resolves the `Authorization` header (every form the server accepts: `Basic`, opaque
/// `Bearer` tokens, login JWTs, go_ws_sh's base64 JSON) into a principal.
pub(crate) fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    surface: wssh_domain::audit::Surface,
) -> Result<Principal, ApiError> {
    let value = headers.get(header::AUTHORIZATION).ok_or(AuthError::MissingCredentials)?;
    let value = value.to_str().map_err(|_| AuthError::MalformedCredentials)?;
    if value.trim().is_empty() {
        return Err(AuthError::MissingCredentials.into());
    }
    let credentials = Credentials::from_authorization_header(value)?;
    Ok(state.auth.authenticate_from(&credentials, &wssh_auth::Origin::request(surface, Some(peer.ip())))?)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_arrive_as_numbers_or_strings() {
        assert_eq!(integer(&json!(5), "n").unwrap(), Some(5));
        assert_eq!(integer(&json!("7"), "n").unwrap(), Some(7));
        assert_eq!(integer(&json!(""), "n").unwrap(), None);
        assert!(integer(&json!("x"), "n").is_err());
        assert!(integer(&json!(1.5), "n").is_err());
        assert!(integer(&json!(true), "n").is_err());
    }

    #[test]
    fn permission_lists() {
        let names = permission_names(&json!("sessions:read, tokens:read"), "p").unwrap();
        assert_eq!(names, vec![Permission::SessionsRead, Permission::TokensRead]);
        let nested = permission_names(&json!([["users:read"], "roles:read"]), "p").unwrap();
        assert_eq!(nested, vec![Permission::UsersRead, Permission::RolesRead]);
        assert!(permission_names(&json!("sessions:fly"), "p").is_err());
        assert!(permission_names(&json!(3), "p").is_err());
        assert!(permission_names(&json!(""), "p").unwrap().is_empty());
    }

    #[test]
    fn queries() {
        let query = Query::parse(Some("roleId=3&permissions=a&permissions%5B%5D=b&name=x+y"));
        assert_eq!(query.integer("roleId").unwrap(), Some(3));
        assert_eq!(query.all("permissions"), vec!["a", "b"]);
        assert_eq!(query.get("name"), Some("x y"));
        assert!(Query::parse(Some("skip=no")).integer("skip").is_err());
        assert!(!query.has("missing"));
    }
}
