// One schema for both backends (see migrations/sqlite and migrations/postgres).

diesel::table! {
    loans (id) {
        id -> Text,
        status -> Text,
        applicant_name -> Text,
        applicant_email -> Text,
        annual_income_cents -> BigInt,
        monthly_debts_cents -> BigInt,
        property_address -> Text,
        declared_value_cents -> BigInt,
        amount_cents -> BigInt,
        term_months -> Integer,
        credit_score -> Nullable<Integer>,
        appraised_value_cents -> Nullable<BigInt>,
        rate_bps -> Nullable<Integer>,
        monthly_payment_cents -> Nullable<BigInt>,
        saga -> Text,
        version -> BigInt,
        submitted_at -> Timestamp,
        updated_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
        notified_at -> Nullable<Timestamp>,
        waiting_on -> Nullable<Text>,
        waiting_since -> Nullable<Timestamp>,
    }
}

diesel::table! {
    loan_events (id) {
        id -> BigInt,
        loan_id -> Text,
        event_type -> Text,
        at -> Timestamp,
        data -> Text,
    }
}

diesel::table! {
    documents (id) {
        id -> Text,
        loan_id -> Text,
        kind -> Text,
        content -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    notifications (id) {
        id -> Text,
        loan_id -> Text,
        channel -> Text,
        recipient -> Text,
        status -> Text,
        sent_at -> Timestamp,
    }
}

diesel::table! {
    outbox (seq) {
        seq -> BigInt,
        message_id -> Text,
        loan_id -> Text,
        destination -> Text,
        kind -> Text,
        envelope -> Text,
        created_at -> Timestamp,
        published_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    timers (id) {
        id -> Text,
        loan_id -> Text,
        kind -> Text,
        request_id -> Text,
        due_at -> Timestamp,
        envelope -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    dead_letters (message_id) {
        message_id -> Text,
        loan_id -> Text,
        destination -> Text,
        envelope -> Text,
        reason -> Text,
        failed_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (key) {
        key -> Text,
        request_hash -> Text,
        loan_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    nodes (node_id) {
        node_id -> Text,
        started_at -> Timestamp,
        heartbeat_at -> Timestamp,
        snapshot -> Text,
    }
}

diesel::table! {
    access_token_generations (loan_id) {
        loan_id -> Text,
        generation -> BigInt,
    }
}

diesel::table! {
    server_secrets (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    nodes,
    loans,
    loan_events,
    documents,
    notifications,
    outbox,
    dead_letters,
    idempotency_keys,
    server_secrets,
    access_token_generations,
    timers,
);
