-- alist's /api/auth/login/hash: the client sends sha256(password + "-https://github.com/alist-org/alist")
-- in hex instead of the password. That digest cannot be checked against the argon2id hash of the
-- password, so a second argon2id hash, of the digest, is kept beside it. NULL until the password
-- is next set or used in plain text; cleared whenever the password changes.
ALTER TABLE users ADD COLUMN alist_hash TEXT;
