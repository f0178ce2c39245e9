-- V2_14: who may read what a source brought in, as the source says (issue 19).
--
-- A document from a source may carry an access set: the postrag users and groups its source
-- lets read it (mapped from the source's own users and groups), always with the source's owner,
-- whose access fetched it. A document without one is readable by whoever reads its collection
-- (uploads, and items the source shows to everyone). Sets are shared by the documents of a
-- source with the same readers, so a user belongs to few of them, and row-level security checks
-- a small array per statement: the documents' and chunks' read policies (vectors, BM25 hits and
-- status history read through those) add `access_set_id IS NULL OR access_set_id = ANY (the
-- acting user's sets)`. Chunks carry their document's set, copied by triggers, so a search
-- needs no join to check it.
-- depends: V2_13__sources

CREATE TABLE access_sets (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id bigint NOT NULL
        CONSTRAINT access_sets_source_id_fkey REFERENCES sources (id) ON DELETE CASCADE,
    members_key text NOT NULL,
    CONSTRAINT access_sets_source_id_members_key_key UNIQUE (source_id, members_key)
);

CREATE TABLE access_set_members (
    set_id bigint NOT NULL
        CONSTRAINT access_set_members_set_id_fkey REFERENCES access_sets (id) ON DELETE CASCADE,
    user_id bigint
        CONSTRAINT access_set_members_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    group_id bigint
        CONSTRAINT access_set_members_group_id_fkey REFERENCES groups (id) ON DELETE CASCADE,
    CONSTRAINT access_set_members_member_check CHECK ((user_id IS NULL) <> (group_id IS NULL))
);
CREATE INDEX access_set_members_set_id_idx ON access_set_members (set_id);
CREATE INDEX access_set_members_user_id_idx ON access_set_members (user_id)
    WHERE user_id IS NOT NULL;
CREATE INDEX access_set_members_group_id_idx ON access_set_members (group_id)
    WHERE group_id IS NOT NULL;

ALTER TABLE documents ADD COLUMN access_set_id bigint
    CONSTRAINT documents_access_set_id_fkey REFERENCES access_sets (id);
CREATE INDEX documents_access_set_id_idx ON documents (access_set_id)
    WHERE access_set_id IS NOT NULL;
ALTER TABLE document_chunks ADD COLUMN access_set_id bigint;

-- A new chunk carries its document's set; a document's new set reaches its chunks.
CREATE FUNCTION document_chunks_copy_access() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT d.access_set_id INTO NEW.access_set_id FROM documents d WHERE d.id = NEW.document_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER document_chunks_copy_access BEFORE INSERT ON document_chunks
    FOR EACH ROW EXECUTE FUNCTION document_chunks_copy_access();

CREATE FUNCTION documents_share_access() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE document_chunks SET access_set_id = NEW.access_set_id WHERE document_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER documents_share_access AFTER UPDATE OF access_set_id ON documents
    FOR EACH ROW WHEN (OLD.access_set_id IS DISTINCT FROM NEW.access_set_id)
    EXECUTE FUNCTION documents_share_access();

-- The sets the acting user is in, directly or through a group.
CREATE FUNCTION postrag_access_sets() RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    RETURN ARRAY(
        SELECT DISTINCT m.set_id FROM access_set_members m
        WHERE m.user_id = postrag_user_id()
           OR m.group_id IN (SELECT g.group_id FROM group_members g
                             WHERE g.user_id = postrag_user_id())
    );
END
$$;
REVOKE ALL ON FUNCTION postrag_access_sets() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION postrag_access_sets() TO postrag_app;

ALTER POLICY documents_read ON documents USING (
    collection_id IN (SELECT id FROM collections)
    AND (access_set_id IS NULL OR access_set_id = ANY ((SELECT postrag_access_sets())::bigint[]))
);
ALTER POLICY document_chunks_read ON document_chunks USING (
    collection_id IN (SELECT id FROM collections)
    AND (access_set_id IS NULL OR access_set_id = ANY ((SELECT postrag_access_sets())::bigint[]))
);

-- The sets are their source's: its owner's sync writes them.
GRANT SELECT, INSERT, UPDATE, DELETE ON access_sets, access_set_members TO postrag_app;
ALTER TABLE access_sets ENABLE ROW LEVEL SECURITY;
CREATE POLICY access_sets_owner ON access_sets FOR ALL TO postrag_app
    USING (source_id IN (SELECT id FROM sources)) WITH CHECK (source_id IN (SELECT id FROM sources));
ALTER TABLE access_set_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY access_set_members_owner ON access_set_members FOR ALL TO postrag_app
    USING (set_id IN (SELECT id FROM access_sets))
    WITH CHECK (set_id IN (SELECT id FROM access_sets));
