-- Seed 004: a refresh token works only from the client (address and User-Agent) that logged
-- in; presenting it from elsewhere revokes the login.

ALTER TABLE logins ADD COLUMN client_ip         TEXT NOT NULL DEFAULT '';
-- hex SHA-256 of the User-Agent header
ALTER TABLE logins ADD COLUMN client_agent_hash TEXT NOT NULL DEFAULT '';
