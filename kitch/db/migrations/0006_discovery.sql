-- Kitch schema 6: discovery. Categories (a curated list admins edit), a channel's category as a
-- reference to one, a lookup table of normalised tags, and FTS5 full-text indexes over channels
-- and categories kept in sync by triggers. Times are Unix seconds (REAL, UTC).

-- hue: the colour (0-359) of the generated cover art; image/image_type: an uploaded cover
-- (WebP), NULL for the generated art.
CREATE TABLE categories (
    id         INTEGER PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE
               CHECK (length(slug) BETWEEN 1 AND 50 AND slug NOT GLOB '*[^a-z0-9-]*'),
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (length(trim(name)) BETWEEN 1 AND 50),
    hue        INTEGER NOT NULL DEFAULT 210 CHECK (hue BETWEEN 0 AND 359),
    image_type TEXT,
    image      BLOB,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

INSERT INTO categories (slug, name, hue, created_at, updated_at) VALUES
    ('just-chatting', 'Just Chatting', 265, unixepoch(), unixepoch()),
    ('software-and-game-development', 'Software and Game Development', 200, unixepoch(), unixepoch()),
    ('music', 'Music', 320, unixepoch(), unixepoch()),
    ('art', 'Art', 15, unixepoch(), unixepoch()),
    ('science-and-technology', 'Science & Technology', 185, unixepoch(), unixepoch()),
    ('makers-and-crafting', 'Makers & Crafting', 35, unixepoch(), unixepoch()),
    ('food-and-drink', 'Food & Drink', 25, unixepoch(), unixepoch()),
    ('talk-shows-and-podcasts', 'Talk Shows & Podcasts', 290, unixepoch(), unixepoch()),
    ('sports-and-fitness', 'Sports & Fitness', 130, unixepoch(), unixepoch()),
    ('travel-and-outdoors', 'Travel & Outdoors', 160, unixepoch(), unixepoch()),
    ('action-and-adventure', 'Action & Adventure', 0, unixepoch(), unixepoch()),
    ('role-playing-games', 'Role-Playing Games', 250, unixepoch(), unixepoch()),
    ('strategy-games', 'Strategy Games', 95, unixepoch(), unixepoch()),
    ('shooters', 'Shooters', 345, unixepoch(), unixepoch()),
    ('simulation-and-racing', 'Simulation & Racing', 50, unixepoch(), unixepoch()),
    ('puzzle-and-casual', 'Puzzle & Casual', 175, unixepoch(), unixepoch()),
    ('fighting-games', 'Fighting Games', 5, unixepoch(), unixepoch()),
    ('retro-games', 'Retro Games', 230, unixepoch(), unixepoch()),
    ('speedrunning', 'Speedrunning', 75, unixepoch(), unixepoch()),
    ('tabletop-and-board-games', 'Tabletop & Board Games', 140, unixepoch(), unixepoch());

-- The old free-text categories: a text that names a seeded category (ignoring ASCII case) takes
-- it; any other non-empty text becomes a category of its own (so no streamer loses theirs; an
-- admin may rename or delete it later). Its slug is made from the text where that gives a
-- valid, unused slug, else it is "category-ID".
INSERT OR IGNORE INTO categories (slug, name, hue, created_at, updated_at)
    SELECT 'legacy-' || min(id), trim(min(category)), (min(id) * 137) % 360, unixepoch(), unixepoch()
    FROM channels WHERE trim(category) <> '' GROUP BY lower(trim(category));

UPDATE OR IGNORE categories SET slug = trim(
    replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(
        lower(name), '&', ' and '), '+', ' plus '), '''', ''), ' ', '-'), '.', '-'), '_', '-'),
        '/', '-'), ':', '-'), '--', '-'), '--', '-'),
    '-')
WHERE slug GLOB 'legacy-*';

UPDATE OR IGNORE categories SET slug = 'category-' || id
WHERE slug GLOB 'legacy-*' OR slug GLOB '*--*' OR slug = '' OR slug GLOB '*[^a-z0-9-]*';

ALTER TABLE channels ADD COLUMN category_id INTEGER REFERENCES categories(id) ON DELETE SET NULL;

UPDATE channels SET category_id = (SELECT id FROM categories WHERE name = trim(channels.category))
WHERE trim(category) <> '';

ALTER TABLE channels DROP COLUMN category;

CREATE INDEX channels_category ON channels (category_id, live);

-- channels.tags (a JSON list) keeps each tag as its streamer wrote it, in order; this table
-- holds their matching keys (NFKC, case-folded) for browsing by tag. Written with the list.
CREATE TABLE channel_tags (
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    tag_key    TEXT NOT NULL,
    PRIMARY KEY (channel_id, tag_key)
) WITHOUT ROWID;
CREATE INDEX channel_tags_by_key ON channel_tags (tag_key, channel_id);

INSERT OR IGNORE INTO channel_tags (channel_id, tag_key)
    SELECT c.id, lower(trim(j.value)) FROM channels c, json_each(c.tags) j
    WHERE json_valid(c.tags) AND j.type = 'text' AND trim(j.value) <> '';

-- Full-text search. Row id = channels.id; unicode61 folds case and diacritics; the prefix
-- indexes serve type-ahead queries ("spe*").
CREATE VIRTUAL TABLE channel_search USING fts5(
    name, display_name, title, description, tags, category,
    tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3'
);

INSERT INTO channel_search (rowid, name, display_name, title, description, tags, category)
    SELECT c.id, u.username, u.display_name, c.title, c.description,
        CASE WHEN json_valid(c.tags)
            THEN coalesce((SELECT group_concat(value, ' ') FROM json_each(c.tags)), '') ELSE '' END,
        coalesce(k.name, '')
    FROM channels c JOIN users u ON u.id = c.user_id LEFT JOIN categories k ON k.id = c.category_id;

CREATE TRIGGER channel_search_insert AFTER INSERT ON channels BEGIN
    INSERT INTO channel_search (rowid, name, display_name, title, description, tags, category)
        SELECT NEW.id, u.username, u.display_name, NEW.title, NEW.description,
            CASE WHEN json_valid(NEW.tags) THEN
                coalesce((SELECT group_concat(value, ' ') FROM json_each(NEW.tags)), '') ELSE '' END,
            coalesce((SELECT name FROM categories WHERE id = NEW.category_id), '')
        FROM users u WHERE u.id = NEW.user_id;
END;

CREATE TRIGGER channel_search_update
AFTER UPDATE OF user_id, title, description, tags, category_id ON channels BEGIN
    DELETE FROM channel_search WHERE rowid = OLD.id;
    INSERT INTO channel_search (rowid, name, display_name, title, description, tags, category)
        SELECT NEW.id, u.username, u.display_name, NEW.title, NEW.description,
            CASE WHEN json_valid(NEW.tags) THEN
                coalesce((SELECT group_concat(value, ' ') FROM json_each(NEW.tags)), '') ELSE '' END,
            coalesce((SELECT name FROM categories WHERE id = NEW.category_id), '')
        FROM users u WHERE u.id = NEW.user_id;
END;

CREATE TRIGGER channel_search_delete AFTER DELETE ON channels BEGIN
    DELETE FROM channel_search WHERE rowid = OLD.id;
END;

CREATE TRIGGER channel_search_user AFTER UPDATE OF username, display_name ON users BEGIN
    UPDATE channel_search SET name = NEW.username, display_name = NEW.display_name
    WHERE rowid IN (SELECT id FROM channels WHERE user_id = NEW.id);
END;

CREATE TRIGGER channel_search_category AFTER UPDATE OF name ON categories BEGIN
    UPDATE channel_search SET category = NEW.name
    WHERE rowid IN (SELECT id FROM channels WHERE category_id = NEW.id);
END;

CREATE VIRTUAL TABLE category_search USING fts5(
    name, tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3'
);

INSERT INTO category_search (rowid, name) SELECT id, name FROM categories;

CREATE TRIGGER category_search_insert AFTER INSERT ON categories BEGIN
    INSERT INTO category_search (rowid, name) VALUES (NEW.id, NEW.name);
END;

CREATE TRIGGER category_search_update AFTER UPDATE OF name ON categories BEGIN
    UPDATE category_search SET name = NEW.name WHERE rowid = NEW.id;
END;

CREATE TRIGGER category_search_delete AFTER DELETE ON categories BEGIN
    DELETE FROM category_search WHERE rowid = OLD.id;
END;
