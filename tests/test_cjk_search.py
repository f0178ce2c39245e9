"""Chinese, Japanese and Korean in the full-text leg (V2_25): the `cjk` collection language."""

from __future__ import annotations

import psycopg
import pytest

from app.db import migrations
from tests.helpers import MIGRATIONS_DIR, create_collection, drain, names, search, upload

CHINESE = "北京是中国的首都，也是一座历史悠久的城市。"
JAPANESE = "私は東京大学で機械学習の研究をしています。"
KOREAN = "저는 서울에 있는 학교에서 한국어를 공부합니다."
MIXED = "这台服务器 runs PostgreSQL，数据库很快。"


@pytest.fixture
def cjk(app, client, admin):  # type: ignore[no-untyped-def]
    """A `chinese` (that is, cjk) collection with a passage in each language and a mixed one."""
    collection = create_collection(client, admin, "cjk", language="chinese")
    for name, text in (
        ("zh.txt", CHINESE),
        ("ja.txt", JAPANESE),
        ("ko.txt", KOREAN),
        ("mixed.txt", MIXED),
    ):
        upload(client, admin, collection, name, text)
    drain(app)
    return collection


def test_chinese_japanese_and_korean_names_all_mean_cjk(client, admin):
    for language in ("cjk", "chinese", "japanese", "korean"):
        created = client.post(
            "/api/v1/collections", json={"name": language, "language": language}, headers=admin
        )
        assert created.status_code == 201, created.json
        assert created.json["language"] == "cjk"
    english = create_collection(client, admin, "en")
    patched = client.patch(
        f"/api/v1/collections/{english}", json={"language": "korean"}, headers=admin
    )
    assert patched.status_code == 200 and patched.json["language"] == "cjk"


@pytest.mark.parametrize("mode", ["fulltext", "hybrid"])
def test_a_two_character_term_finds_its_passage(client, admin, cjk, mode):
    for term, expected in (("首都", "zh.txt"), ("研究", "ja.txt"), ("학교", "ko.txt")):
        response = search(client, admin, query=term, mode=mode, min_similarity=0)
        hits = response.json["hits"]
        assert names(response)[0] == expected, term
        assert hits[0]["fulltext"]["rank"] == 1, term
        assert [h["filename"] for h in hits if h["fulltext"]] == [expected], term


def test_a_longer_query_scores_its_bigrams(client, admin, cjk):
    # 機械学習 is 機械 械学 学習: only the Japanese passage has them.
    assert names(search(client, admin, query="機械学習について", mode="fulltext")) == ["ja.txt"]
    # 數據庫 in traditional characters is not 数据库: no hit rather than a wrong one.
    assert names(search(client, admin, query="數據", mode="fulltext")) == []


def test_latin_words_in_a_cjk_collection_are_stemmed(client, admin, cjk):
    assert names(search(client, admin, query="running", mode="fulltext")) == ["mixed.txt"]
    assert names(search(client, admin, query="postgresql", mode="fulltext")) == ["mixed.txt"]
    assert names(search(client, admin, query="数据库", mode="fulltext")) == ["mixed.txt"]


def test_phrases_and_prefixes_in_cjk_text(client, admin, cjk):
    assert names(search(client, admin, query='"东京大学"', mode="fulltext")) == []
    assert names(search(client, admin, query='"東京大学"', mode="fulltext")) == ["ja.txt"]
    # 大学東京 has the bigram 大学 but not in this order: the phrase does not match.
    assert names(search(client, admin, query='"大学東京"', mode="fulltext")) == []
    # A prefix over CJK characters is the phrase of its bigrams, the last one a prefix.
    assert names(search(client, admin, query="東京大*", mode="fulltext")) == ["ja.txt"]
    assert names(search(client, admin, query="postg*", mode="fulltext")) == ["mixed.txt"]


def test_a_language_change_to_and_from_cjk_reindexes(app, client, admin):
    english = create_collection(client, admin, "en")
    upload(client, admin, english, "ja.txt", JAPANESE)
    drain(app)
    # English reads the whole run of characters as one word: no two-character term matches.
    assert names(search(client, admin, query="研究", mode="fulltext")) == []
    to_cjk = client.patch(
        f"/api/v1/collections/{english}", json={"language": "japanese"}, headers=admin
    )
    assert to_cjk.status_code == 200, to_cjk.json
    assert names(search(client, admin, query="研究", mode="fulltext")) == ["ja.txt"]
    back = client.patch(
        f"/api/v1/collections/{english}", json={"language": "english"}, headers=admin
    )
    assert back.status_code == 200 and back.json["language"] == "english"
    assert names(search(client, admin, query="研究", mode="fulltext")) == []


def test_cjk_tokens_and_other_languages_unchanged(database_url):
    text = "東京大学で研究。しています「引用」ＡＢＣ Python使い runs 학교에서 人々 コーヒー 年"
    with psycopg.connect(database_url) as conn:
        (tokens,) = conn.execute(
            "SELECT array_agg(lexeme ORDER BY positions[1]) FROM"
            " unnest(postrag_tsvector('cjk', %s))",
            (text,),
        ).fetchone()
        unchanged = conn.execute(
            "SELECT cfgname FROM pg_ts_config WHERE cfgname <> 'cjk'"
            " AND postrag_tsvector(oid::regconfig, %(t)s) <> to_tsvector(oid::regconfig, %(t)s)",
            {"t": text},
        ).fetchall()
    assert tokens == [
        *("東京", "京大", "大学", "学で", "で研", "研究"),
        *("して", "てい", "いま", "ます", "引用", "abc", "python", "使い", "run"),
        *("학교", "교에", "에서", "人々", "コー", "ーヒ", "ヒー", "年"),
    ]
    assert unchanged == []


def test_rolling_back_v2_25_moves_cjk_collections_to_english(cjk, database_url):
    rolled_back = migrations.rollback(database_url, MIGRATIONS_DIR, "V2_24__context_preferences")
    assert rolled_back[-1] == "V2_25__cjk_fulltext"  # after the later ones, newest first
    with psycopg.connect(database_url) as conn:
        (language,) = conn.execute(
            "SELECT language::text FROM collections WHERE id = %s", (cjk,)
        ).fetchone()
        stale = conn.execute(
            "SELECT c.id FROM document_chunks c JOIN collections col ON col.id = c.collection_id"
            " WHERE c.search_vector IS DISTINCT FROM to_tsvector(col.language, c.text)"
        ).fetchall()
        postings = conn.execute(
            "SELECT lexeme FROM chunk_lexemes WHERE lexeme IN ('研究', 'run') ORDER BY 1"
        ).fetchall()
    # Re-tokenised in English: the bigrams are gone, Latin words still stemmed.
    assert language == "english" and stale == [] and postings == [("run",)]
    assert migrations.migrate(database_url, MIGRATIONS_DIR)[0] == "V2_25__cjk_fulltext"
