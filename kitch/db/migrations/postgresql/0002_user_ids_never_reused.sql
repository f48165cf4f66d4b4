-- Kitch schema 2 (PostgreSQL): a deleted user's id is never given to a new account.
-- user_id_floor holds the highest id ever deleted; create_user picks max(ids, floor) + 1.

CREATE TABLE user_id_floor (id BIGINT NOT NULL);

INSERT INTO user_id_floor (id) SELECT coalesce(max(id), 0) FROM users;

CREATE FUNCTION users_raise_id_floor() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE user_id_floor SET id = greatest(id, OLD.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_raise_id_floor AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION users_raise_id_floor();
