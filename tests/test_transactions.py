"""A 2xx only after COMMIT: a failure at commit is never reported as success, and leaves nothing."""

from __future__ import annotations

import psycopg

S = "/api/v1/sessions"

# A constraint trigger deferred to COMMIT that refuses one marked message: the INSERT succeeds,
# the COMMIT fails.
FAIL_AT_COMMIT = """
CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.message::text LIKE '%fail-at-commit%' THEN
    RAISE EXCEPTION 'refused at commit';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER refuse_marked AFTER INSERT ON messages
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_marked();
"""


async def test_commit_failure_is_not_a_2xx_and_leaves_nothing(client, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(FAIL_AT_COMMIT)  # type: ignore[arg-type]
    await client.post(S, json={"session_id": "s"})
    await client.post(
        f"{S}/s/agents", json={"agent_id": "a", "state": {}, "conversation_manager_state": {}}
    )
    bad = {"role": "user", "content": [{"text": "fail-at-commit"}]}
    r = await client.post(f"{S}/s/agents/a/messages", json={"message_id": 0, "message": bad})
    assert r.status_code >= 500
    assert r.json()["error"]["request_id"] == r.headers["x-request-id"]
    batch = {
        "messages": [
            {"message_id": 1, "message": {"role": "user", "content": [{"text": "fine"}]}},
            {"message_id": 2, "message": bad},
        ]
    }
    r = await client.post(f"{S}/s/agents/a/messages/batch", json=batch)
    assert r.status_code >= 500
    listed = (await client.get(f"{S}/s/agents/a/messages")).json()
    assert listed == {"items": [], "next_cursor": None}
    good = await client.post(
        f"{S}/s/agents/a/messages",
        json={"message_id": 0, "message": {"role": "user", "content": [{"text": "ok"}]}},
    )
    assert good.status_code == 201
