-- Kitch schema 2: a deleted user's id is never given to a new account.
-- SQLite reuses max(id) + 1 after the highest row is deleted, and an access token names its user
-- by id: without this a deleted account's unexpired token would sign in as the next registrant.
-- user_id_floor holds the highest id ever deleted; create_user picks max(ids, floor) + 1.

CREATE TABLE user_id_floor (id INTEGER NOT NULL);

INSERT INTO user_id_floor (id) SELECT coalesce(max(id), 0) FROM users;

CREATE TRIGGER users_raise_id_floor AFTER DELETE ON users BEGIN
    UPDATE user_id_floor SET id = max(id, OLD.id);
END;
