//! The validation limits of free-text fields, defined once for every surface (names, keys and
//! passwords are limited by their domain constructors).

/// A role's remark and a user's remark.
pub const REMARK_CHARS: usize = 1024;
/// A user's profile fields (nickname, e-mail, phone, sex).
pub const PROFILE_CHARS: usize = 256;
/// A user's avatar URL.
pub const AVATAR_CHARS: usize = 2048;
/// alist's `base_path`.
pub const BASE_PATH_CHARS: usize = 1024;
/// alist's `sso_id`.
pub const SSO_ID_CHARS: usize = 256;
/// A token's description and tags.
pub const TOKEN_TEXT_CHARS: usize = 1024;
/// A token's title.
pub const TOKEN_TITLE_CHARS: usize = 256;
/// An application key of seed 002's tokens.
pub const APP_KEY_CHARS: usize = 128;
/// The longest token expiry, in days (a hundred years).
pub const TOKEN_EXPIRY_DAYS: i64 = 36_500;
/// An SSH key's title.
pub const SSH_KEY_TITLE_CHARS: usize = 128;
