"""Developer diagnostics: the token debugger, the test login and
per-attempt views of the audit log. Nothing here consumes a state, a token or
a code, issues anything, or writes end users: it reads, and explains.

* ``debugger`` — the verdict, from the live validators, plus read-only Redis lookups, and
  every check of docs/protocol.md §4.2 / §5.1 (the validators' own rules, ``saas.jwt``) for display;
* ``endpoint_call`` — a test call of the app's endpoint, step by step;
* ``attempts`` — a login's audit events grouped by its attempt id.

Reference: docs/diagnostics.md.
"""
