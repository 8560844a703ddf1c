//! server (todo)
