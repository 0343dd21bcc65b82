-- A request's timers are dropped together when it is answered, extended or closed.
CREATE INDEX timers_request ON timers (request_id);
