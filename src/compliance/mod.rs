//! Contact rules by jurisdiction: holiday calendars (more parts to come).

pub mod holidays;
