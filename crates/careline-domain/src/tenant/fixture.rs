//! Test fixtures shared by the tenant modules' tests: the demo file and a small
//! valid config with known line numbers.

pub(super) const DEMO: &str = include_str!("../../../../deploy/tenants/demo-health.yaml");
pub(super) const HEX_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// A valid config with known line numbers; cases edit it without moving lines.
pub(super) fn base() -> String {
    [
        "id: acme",                                               // 1
        "name: Acme Health",                                      // 2
        "time_zone: America/Denver",                              // 3
        "languages: [en, es]",                                    // 4
        "hours:",                                                 // 5
        "  - days: [mon, tue, wed, thu, fri]",                    // 6
        "    open: \"07:00\"",                                    // 7
        "    close: \"19:00\"",                                   // 8
        "holidays: [2026-12-25]",                                 // 9
        "after_hours_message:",                                   // 10
        "  en: Closed.",                                          // 11
        "  es: Cerrado.",                                         // 12
        "contact_email: help@acme.example",                       // 13
        "api_keys:",                                              // 14
        "  - { id: integration, scopes: [intake, supervisor],",   // 15
        &format!("    sha256: {HEX_A} }}"),                       // 16
        "routing:",                                               // 17
        "  urgent_queue: clinical",                               // 18
        "  heartbeat_ttl_secs: 15",                               // 19
        "queues:",                                                // 20
        "  - id: general",                                        // 21
        "    skills:",                                            // 22
        "      - { skill: member_services, min_proficiency: 3 }", // 23
        "    overflow:",                                          // 24
        "      - { after_secs: 60, relax_by: 1 }",                // 25
        "      - { after_secs: 120, widen_to: clinical }",        // 26
        "  - id: clinical",                                       // 27
        "    skills:",                                            // 28
        "      - { skill: clinical, min_proficiency: 6 }",        // 29
        "agents:",                                                // 30
        "  - id: ana",                                            // 31
        &format!("    key_sha256: {HEX_A}"),                      // 32
        "    skills: { member_services: 8, clinical: 7 }",        // 33
        "    languages: [en, es]",                                // 34
        "    capacity: { chat: 2 }",                              // 35
    ]
    .join("\n")
        + "\n"
}

pub(super) fn edited(from: &str, to: &str) -> String {
    let text = base();
    assert!(text.contains(from), "base has no {from:?}");
    text.replacen(from, to, 1)
}
