-- Sessions, agents, messages and multi-agent state, as Strands stores them.
-- JSON documents use the `json` type, not `jsonb`: it keeps the client's text exactly (object key
-- order, \u0000 escapes, numbers beyond double precision), which Strands' prompts depend on.

CREATE TABLE service_meta (
    name  text NOT NULL,
    value text NOT NULL,
    CONSTRAINT service_meta_pkey PRIMARY KEY (name)
);

-- Signs paging cursors; shared by every replica through the database, so cursors survive
-- restarts and work across replicas without configuration.
INSERT INTO service_meta (name, value)
VALUES ('cursor_secret', md5(random()::text || clock_timestamp()::text) || md5(random()::text));

CREATE TABLE sessions (
    session_id   text        NOT NULL,
    session_type text        NOT NULL,
    version      bigint      NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sessions_pkey PRIMARY KEY (session_id),
    CONSTRAINT sessions_session_id_check CHECK (char_length(session_id) BETWEEN 1 AND 255),
    CONSTRAINT sessions_version_check CHECK (version > 0)
);

-- Newest-first listing with keyset paging on (created_at, session_id).
CREATE INDEX sessions_created_at_idx ON sessions (created_at, session_id);

CREATE TABLE agents (
    session_id                 text        NOT NULL,
    agent_id                   text        NOT NULL,
    state                      json        NOT NULL,
    conversation_manager_state json        NOT NULL,
    internal_state             json        NOT NULL DEFAULT '{}',
    version                    bigint      NOT NULL DEFAULT 1,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agents_pkey PRIMARY KEY (session_id, agent_id),
    CONSTRAINT agents_session_fkey FOREIGN KEY (session_id)
        REFERENCES sessions (session_id) ON DELETE CASCADE,
    CONSTRAINT agents_agent_id_check CHECK (char_length(agent_id) BETWEEN 1 AND 255),
    CONSTRAINT agents_version_check CHECK (version > 0)
);

CREATE TABLE messages (
    session_id     text        NOT NULL,
    agent_id       text        NOT NULL,
    message_id     integer     NOT NULL,
    role           text        NOT NULL,
    content_types  text[]      NOT NULL,
    message        json        NOT NULL,
    redact_message json,
    version        bigint      NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- The primary key serves keyset paging and counting for one agent's history.
    CONSTRAINT messages_pkey PRIMARY KEY (session_id, agent_id, message_id),
    CONSTRAINT messages_agent_fkey FOREIGN KEY (session_id, agent_id)
        REFERENCES agents (session_id, agent_id) ON DELETE CASCADE,
    CONSTRAINT messages_message_id_check CHECK (message_id >= 0),
    CONSTRAINT messages_role_check CHECK (role IN ('user', 'assistant')),
    CONSTRAINT messages_version_check CHECK (version > 0)
);

CREATE TABLE multi_agents (
    session_id     text        NOT NULL,
    multi_agent_id text        NOT NULL,
    state          json        NOT NULL,
    version        bigint      NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT multi_agents_pkey PRIMARY KEY (session_id, multi_agent_id),
    CONSTRAINT multi_agents_session_fkey FOREIGN KEY (session_id)
        REFERENCES sessions (session_id) ON DELETE CASCADE,
    CONSTRAINT multi_agents_multi_agent_id_check
        CHECK (char_length(multi_agent_id) BETWEEN 1 AND 255),
    CONSTRAINT multi_agents_version_check CHECK (version > 0)
);
