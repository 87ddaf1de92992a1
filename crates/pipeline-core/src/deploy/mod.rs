//! Deploy: compose driver, rollout strategies, verification, rollback, locks (work in progress).
