-- V2_25: Chinese, Japanese and Korean in the full-text leg (issue 23). PostgreSQL's parser reads
-- a run of CJK characters as one word (a whole sentence, in Chinese or Japanese), so no query
-- term ever matched it. The text-search configuration `cjk` (English for Latin words: stemmed,
-- stop words dropped) gets its text through postrag_cjk_text first, which cuts every run of Han,
-- kana and Hangul characters into overlapping character bigrams ("東京大学" -> "東京 京大 大学";
-- a lone character stays itself). Everything that tokenises, the chunk trigger, a collection's
-- language change and the search statement, now goes through postrag_tsvector (and
-- postrag_search_text for tsqueries), which transforms only for `cjk`: other configurations
-- read the text as before. Bigrams are ordinary lexemes, so the postings, term frequencies and
-- chunk lengths that BM25 uses stay exact, and phrases keep their positions.
-- depends: V2_24__context_preferences

CREATE TEXT SEARCH CONFIGURATION cjk (COPY = english);
COMMENT ON TEXT SEARCH CONFIGURATION cjk IS
    'postrag: English for Latin words, CJK runs as character bigrams (through postrag_cjk_text)';

-- NFKC first (full-width Latin and digits become ASCII, half-width katakana full-width); then CJK
-- punctuation becomes space, since in a "C" locale PostgreSQL's parser counts any non-ASCII
-- character as a letter and would glue "。" to the next word. Each run is then set apart with
-- spaces (so "Python使い" gives the word "python" and the run "使い") and replaced by its bigrams
-- in order. The runs and the text between them are matched once each and put back together by
-- their ordinal (a regexp_replace with lookarounds did the same three times slower).
CREATE FUNCTION postrag_cjk_text(body text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    WITH k(run, punctuation) AS (VALUES (
        -- Hangul jamo, 々〆〇, hiragana, katakana (with ー, without ・), Hangul compatibility jamo,
        -- katakana extension, CJK ideographs (extension A, unified, compatibility, planes 2-3),
        -- Hangul jamo extensions and syllables.
        '[\u1100-\u11FF\u3005-\u3007\u3041-\u3096\u309D-\u309F\u30A1-\u30FA\u30FC-\u30FF'
        '\u3130-\u318F\u31F0-\u31FF\u3400-\u4DBF\u4E00-\u9FFF\uA960-\uA97F\uAC00-\uD7FF'
        '\uF900-\uFAFF\U00020000-\U0003FFFF]+',
        -- CJK symbols and punctuation, kana voicing marks, ・, vertical forms, full-width forms.
        '[\u3000-\u3004\u3008-\u3040\u3097-\u309C\u30A0\u30FB\uFE30-\uFE4F\uFF00-\uFFEF]'
    )), t(s) AS (
        SELECT regexp_replace(normalize(body, NFKC), k.punctuation, ' ', 'g') FROM k
    ), gaps(gap, n) AS (
        SELECT g.gap, g.n FROM t, k, regexp_split_to_table(t.s, k.run) WITH ORDINALITY g(gap, n)
    ), runs(chars, n) AS (
        SELECT string_to_array(r.m[1], NULL), r.n
        FROM t, k, regexp_matches(t.s, k.run, 'g') WITH ORDINALITY r(m, n)
    )
    -- Gap n comes before run n; the last gap has no run after it.
    SELECT string_agg(gaps.gap || coalesce(' ' || b.bigrams || ' ', ''), '' ORDER BY gaps.n)
    FROM gaps LEFT JOIN runs ON runs.n = gaps.n
    LEFT JOIN LATERAL (
        SELECT coalesce(string_agg(runs.chars[i] || runs.chars[i + 1], ' ' ORDER BY i),
                        runs.chars[1]) AS bigrams  -- a lone character stays itself
        FROM generate_series(1, cardinality(runs.chars) - 1) i
    ) b ON true
$$;

-- Whether a configuration is cjk, by its name (schema-qualified when not on the search path, so
-- any caller's path will do). This and the next two are single expressions, neither STRICT nor
-- with a subquery, so PostgreSQL inlines them into the calling statement: a collection in
-- another language pays about a microsecond per text for the check (bench/cjk_tokenise.py).
CREATE FUNCTION postrag_is_cjk(config regconfig) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT config::text = 'cjk' OR config::text LIKE '%.cjk'
$$;

-- The text a configuration tokenises (queries' phrases too): in cjk, with CJK runs in bigrams.
CREATE FUNCTION postrag_search_text(config regconfig, body text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN postrag_is_cjk(config) THEN postrag_cjk_text(body) ELSE body END
$$;

CREATE FUNCTION postrag_tsvector(config regconfig, body text) RETURNS tsvector
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_tsvector(config, postrag_search_text(config, body))
$$;

-- A query's `word*` (letters and digits) as a tsquery: `word:*`. In cjk the word's tokens in a
-- row with the last one a prefix: "東京大*" -> '東京' <-> '京大':*, which among bigrams is the
-- phrase 東京大 (built from phraseto_tsquery's output, which quotes every lexeme).
CREATE FUNCTION postrag_prefix_tsquery(config regconfig, word text) RETURNS tsquery
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN NOT postrag_is_cjk(config) THEN to_tsquery(config, word || ':*')
        ELSE (
            SELECT CASE WHEN numnode(q) = 0 THEN q ELSE (q::text || ':*')::tsquery END
            FROM phraseto_tsquery(config, postrag_cjk_text(word)) q
        )
    END
$$;

CREATE OR REPLACE FUNCTION document_chunks_prepare_text() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT d.collection_id, postrag_tsvector(col.language, NEW.text)
    INTO STRICT NEW.collection_id, NEW.search_vector
    FROM documents d JOIN collections col ON col.id = d.collection_id
    WHERE d.id = NEW.document_id
    FOR SHARE OF col;
    NEW.search_length := postrag_tsvector_length(NEW.search_vector);
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION collections_reindex_text() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM chunk_lexemes WHERE collection_id = NEW.id;
    DELETE FROM collection_lexeme_stats WHERE collection_id = NEW.id;
    DELETE FROM collection_text_stats WHERE collection_id = NEW.id;
    UPDATE document_chunks SET search_vector = postrag_tsvector(NEW.language, text)
    WHERE collection_id = NEW.id;
    UPDATE document_chunks SET search_length = postrag_tsvector_length(search_vector)
    WHERE collection_id = NEW.id;
    PERFORM postrag_index_chunk_text(ARRAY(
        SELECT id FROM document_chunks WHERE collection_id = NEW.id
    ));
    RETURN NULL;
END
$$;
