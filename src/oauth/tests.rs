//! The authorization server driven through its router with `oneshot`.
