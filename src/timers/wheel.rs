//! The timers a node holds in memory: those due soon, read from the database in pages by due
//! time, plus those committed here that fall inside what was read. Pure: the service feeds it
//! the rows and the time.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDateTime;

use crate::persistence::timers::{After, TimerKey};
use crate::persistence::TimerRow;

/// How far the held timers reach: every timer up to here is held (or fired); later ones are
/// only in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Frontier {
    /// Nothing read yet.
    Nothing,
    /// Every timer due at or before this time.
    Through(NaiveDateTime),
    /// Every timer up to this one (the last of a full page).
    UpTo(TimerKey),
}

#[derive(Debug)]
pub struct Wheel {
    held: BTreeMap<TimerKey, TimerRow>,
    frontier: Frontier,
    max_held: usize,
    /// Timers handed out to be fired and not settled yet: not taken again meanwhile.
    firing: HashSet<String>,
}

impl Wheel {
    pub fn new(max_held: usize) -> Self {
        Self { held: BTreeMap::new(), frontier: Frontier::Nothing, max_held: max_held.max(1), firing: HashSet::new() }
    }

    /// Where the next page starts.
    pub fn next_page(&self) -> After {
        match &self.frontier {
            Frontier::Nothing => After::Start,
            Frontier::Through(t) => After::Time(*t),
            Frontier::UpTo(key) => After::Key(key.clone()),
        }
    }

    /// How many more timers a page may bring.
    pub fn room(&self) -> usize {
        self.max_held.saturating_sub(self.held.len())
    }

    /// Whether the held timers reach less than `until`: time to read the next page (if there is
    /// room for it).
    pub fn reaches_before(&self, until: NaiveDateTime) -> bool {
        let reach = match &self.frontier {
            Frontier::Nothing => return true,
            Frontier::Through(t) => *t,
            Frontier::UpTo(key) => key.due_at,
        };
        reach < until && self.room() > 0
    }

    /// A page read from [`Self::next_page`] up to `until`, asked for at most `limit` rows: a full
    /// page reaches its last row, a shorter one all of `until`.
    pub fn loaded(&mut self, rows: Vec<TimerRow>, until: NaiveDateTime, limit: usize) {
        let full = rows.len() >= limit;
        if let Some(last) = rows.last().filter(|_| full) {
            self.frontier = Frontier::UpTo(last.key());
        } else {
            self.frontier = Frontier::Through(until);
        }
        for row in rows {
            self.hold(row);
        }
    }

    /// A timer committed on this node: held if it falls inside what was read (a later one is
    /// read with its page).
    pub fn offer(&mut self, row: TimerRow) {
        let inside = match &self.frontier {
            Frontier::Nothing => false,
            Frontier::Through(t) => row.due_at <= *t,
            Frontier::UpTo(key) => row.key() <= *key,
        };
        if inside {
            self.hold(row);
        }
    }

    /// Timers found due in the database and not held here (committed elsewhere after their page
    /// was read): fire them with the held ones.
    pub fn overdue(&mut self, rows: Vec<TimerRow>) {
        for row in rows {
            self.hold(row);
        }
    }

    fn hold(&mut self, row: TimerRow) {
        if !self.firing.contains(&row.id) {
            self.held.insert(row.key(), row);
        }
    }

    /// When the next held timer is due.
    pub fn next_due(&self) -> Option<NaiveDateTime> {
        self.held.keys().next().map(|key| key.due_at)
    }

    /// The timers due at `now`, taken out to be fired (each until [`Self::settled`]).
    pub fn take_due(&mut self, now: NaiveDateTime) -> Vec<TimerRow> {
        let mut due = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            if entry.key().due_at > now {
                break;
            }
            let row = entry.remove();
            self.firing.insert(row.id.clone());
            due.push(row);
        }
        due
    }

    /// A timer handed out by [`Self::take_due`] fired (or was fired elsewhere): forget it.
    pub fn settled(&mut self, id: &str) {
        self.firing.remove(id);
    }

    /// A timer that failed to fire (the database was away): held again, to be tried again.
    pub fn retry(&mut self, row: TimerRow) {
        self.firing.remove(&row.id);
        self.hold(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap().naive_utc()
    }

    fn timer(id: &str, due: i64) -> TimerRow {
        TimerRow {
            id: id.into(),
            loan_id: "l".into(),
            kind: "information_deadline".into(),
            request_id: "r".into(),
            due_at: at(due),
            envelope: "{}".into(),
            created_at: at(0),
        }
    }

    #[test]
    fn due_timers_come_out_in_order_once_and_later_ones_stay() {
        let mut wheel = Wheel::new(10);
        assert_eq!(wheel.next_page(), After::Start);
        wheel.loaded(vec![timer("b", 5), timer("a", 5), timer("c", 9)], at(60), 10);
        assert_eq!(wheel.next_due(), Some(at(5)));
        let due: Vec<String> = wheel.take_due(at(5)).into_iter().map(|t| t.id).collect();
        assert_eq!(due, ["a", "b"]);
        assert!(wheel.take_due(at(5)).is_empty(), "taken once");
        // A page read again while they fire does not hold them a second time.
        wheel.overdue(vec![timer("a", 5)]);
        assert!(wheel.take_due(at(6)).is_empty());
        wheel.settled("a");
        assert_eq!(wheel.next_due(), Some(at(9)));
        assert_eq!(wheel.next_page(), After::Time(at(60)));
    }

    #[test]
    fn a_full_page_reaches_its_last_row_and_committed_timers_beyond_it_wait_for_theirs() {
        let mut wheel = Wheel::new(2);
        wheel.loaded(vec![timer("a", 1), timer("b", 2)], at(60), 2);
        assert_eq!(wheel.next_page(), After::Key(timer("b", 2).key()));
        assert_eq!(wheel.room(), 0);
        assert!(!wheel.reaches_before(at(60)), "no room: nothing more is read");
        wheel.offer(timer("c", 30));
        wheel.offer(timer("early", 1));
        let due: Vec<String> = wheel.take_due(at(40)).into_iter().map(|t| t.id).collect();
        assert_eq!(due, ["a", "early", "b"], "c is beyond the page: it is read with the next");
        assert!(wheel.reaches_before(at(60)));
    }

    #[test]
    fn a_timer_that_failed_to_fire_is_held_again() {
        let mut wheel = Wheel::new(5);
        wheel.loaded(vec![timer("a", 1)], at(60), 5);
        let row = wheel.take_due(at(1)).pop().unwrap();
        wheel.retry(row);
        assert_eq!(wheel.take_due(at(2)).len(), 1);
    }
}
