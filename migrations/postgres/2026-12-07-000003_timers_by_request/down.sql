DROP INDEX timers_request;
