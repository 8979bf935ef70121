//! Table tests of the classifier in English and Spanish: what must be found,
//! what must not (false positives, negations), languages and topics.

use super::*;
use crate::tenant::TopicRule;

fn urgent_of(text: &str) -> Option<&'static str> {
    classify(text, &[]).urgent.map(UrgentReason::as_str)
}

#[test]
fn emergency_phrases_are_found_in_english_and_spanish() {
    let cases = [
        ("I have chest pain", "chest_pain"),
        ("CHEST PAIN since this morning", "chest_pain"),
        ("my chest hurts when I walk", "chest_pain"),
        ("sharp pain in my chest", "chest_pain"),
        ("I have chest pain, no fever", "chest_pain"),
        ("No fever and chest pain", "chest_pain"),
        ("No, I have chest pain", "chest_pain"),
        ("No I have chest pain", "chest_pain"),
        ("I think I'm having a heart attack", "heart_attack"),
        ("I can't breathe", "cant_breathe"),
        ("I can’t breathe", "cant_breathe"),
        ("i cannot breathe", "cant_breathe"),
        ("I can not breathe well", "cant_breathe"),
        ("having trouble breathing", "cant_breathe"),
        ("I am thinking about suicide", "suicide"),
        ("I feel suicidal", "suicide"),
        ("I want to kill myself", "suicide"),
        ("I want to end my life", "suicide"),
        ("I keep wanting to hurt myself", "self_harm"),
        ("my son overdosed on his meds", "overdose"),
        ("possible overdose", "overdose"),
        ("took too many pills", "overdose"),
        ("I think my dad is having a stroke", "stroke"),
        ("signs of stroke", "stroke"),
        ("I am bleeding heavily after surgery", "heavy_bleeding"),
        ("heavy bleeding after delivery", "heavy_bleeding"),
        ("the cut won't stop bleeding", "heavy_bleeding"),
        // Spanish, with and without accents, any case
        ("tengo dolor de pecho", "chest_pain"),
        ("TENGO DOLOR DE PECHO", "chest_pain"),
        ("me duele el pecho", "chest_pain"),
        ("dolores en el pecho desde ayer", "chest_pain"),
        ("Tengo dolor de pecho, no tengo fiebre", "chest_pain"),
        ("creo que es un infarto", "heart_attack"),
        ("no puedo respirar", "cant_breathe"),
        ("¡No puedo respirar!", "cant_breathe"),
        ("ya no puedo respirar bien", "cant_breathe"),
        ("pienso en el suicidio", "suicide"),
        ("quiero quitarme la vida", "suicide"),
        ("QUIERO QUITARME LA VÍDA", "suicide"),
        ("Dolor de PÉCHO", "chest_pain"),
        ("dolor de pe\u{301}cho", "chest_pain"),
        ("quiero matarme", "suicide"),
        ("tomó una sobredosis", "overdose"),
        ("mi mamá tuvo un derrame", "stroke"),
        ("creo que es un derrame cerebral", "stroke"),
        ("un ictus", "stroke"),
        ("sangrado abundante después del parto", "heavy_bleeding"),
        ("estoy sangrando mucho", "heavy_bleeding"),
        ("la herida no para de sangrar", "heavy_bleeding"),
        ("hemorragia", "heavy_bleeding"),
        // The earliest phrase gives the reason.
        ("I overdosed and now I have chest pain", "overdose"),
    ];
    for (text, want) in cases {
        assert_eq!(urgent_of(text), Some(want), "{text:?}");
    }
}

#[test]
fn negated_and_look_alike_phrases_are_not_urgent() {
    let cases = [
        // negations
        "no chest pain",
        "No chest pain today, just a billing question",
        "without chest pain",
        "Patient denies chest pain.",
        "I don't have any chest pain",
        "I do not have chest pain",
        "I haven't had chest pain since the surgery",
        "never had a stroke",
        "no signs of stroke",
        "sin dolor de pecho",
        "no tengo dolor de pecho",
        "No he tenido dolor de pecho",
        "niega dolor de pecho",
        "sin fiebre ni dolor de pecho",
        "nunca tuvo un derrame",
        // look-alikes: whole words only, other meanings
        "I am painting my chest of drawers",
        "that was a stroke of luck",
        "at the stroke of midnight",
        "my brush strokes",
        "backstroke lessons for my son",
        "painkillers refill please",
        "I can breathe fine now",
        "a little bleeding from my gums",
        "sangrado leve de encías",
        "un derrame de aceite en la cocina",
        "my chest. Pain in my knee",
        "pecho de pollo",
        "",
        "   ,,, !!! ",
    ];
    for text in cases {
        assert_eq!(urgent_of(text), None, "{text:?}");
    }
}

#[test]
fn negation_does_not_reach_past_a_clause_or_a_content_word() {
    let cases = [
        ("no fever. chest pain", Some("chest_pain")),
        ("no fever; dolor de pecho", Some("chest_pain")),
        ("not sure but chest pain", Some("chest_pain")),
        ("no chest pain but I can't breathe", Some("cant_breathe")),
        (
            "sin dolor de pecho pero no puedo respirar",
            Some("cant_breathe"),
        ),
        ("no chest pain", None),
    ];
    for (text, want) in cases {
        assert_eq!(urgent_of(text), want, "{text:?}");
    }
}

#[test]
fn language_is_detected_only_when_clear() {
    let cases = [
        ("tengo dolor de pecho", Some(Language::Es)),
        ("Necesito ayuda con mi factura", Some(Language::Es)),
        ("¿Cuándo es mi cita?", Some(Language::Es)),
        ("I need help with my bill", Some(Language::En)),
        ("When is my appointment?", Some(Language::En)),
        ("Hola, I need help with my bill please", Some(Language::En)),
        ("chest pain", None),
        ("ok", None),
        ("", None),
        ("12345", None),
    ];
    for (text, want) in cases {
        assert_eq!(classify(text, &[]).language, want, "{text:?}");
    }
}

fn rule(topic: &str, queue: &str, keywords: &[&str]) -> TopicRule {
    TopicRule {
        topic: topic.into(),
        queue: queue.into(),
        keywords: keywords.iter().map(|k| k.to_string()).collect(),
    }
}

#[test]
fn topic_is_the_first_configured_rule_with_a_keyword() {
    let rules = [
        rule("claims", "claims-q", &[]),
        rule("billing", "billing", &[]),
        rule("password", "web", &[]),
        rule("provider_search", "general", &[]),
        rule("appointment", "scheduling", &[]),
        rule("coverage", "general", &[]),
        rule("pcp_change", "general", &[]),
        rule("complaint", "grievances", &[]),
        rule("dental", "dental", &["dentures", "muela|muelas"]),
    ];
    let cases = [
        ("Question about a claim I filed", Some("claims")),
        ("Pregunta sobre una reclamación", Some("claims")),
        ("My bill is wrong", Some("billing")),
        ("Me cobraron dos veces, revisen mi factura", Some("billing")),
        ("I forgot my password", Some("password")),
        ("olvidé mi contraseña", Some("password")),
        (
            "Can you help me find a doctor near me",
            Some("provider_search"),
        ),
        ("quiero encontrar un especialista", Some("provider_search")),
        ("I need to reschedule my appointment", Some("appointment")),
        ("quiero una cita", Some("appointment")),
        ("Is this covered by my plan?", Some("coverage")),
        ("¿Mi plan cubre lentes?", Some("coverage")),
        ("I want to change my PCP", Some("pcp_change")),
        ("cambiar de médico de cabecera", Some("pcp_change")),
        ("I want to file a complaint", Some("complaint")),
        ("tengo una queja", Some("complaint")),
        ("my dentures broke", Some("dental")),
        ("me duele una muela", Some("dental")),
        // the claim rule comes first
        ("my claim was billed twice", Some("claims")),
        ("reclaimed", None),
        ("hello", None),
    ];
    for (text, want) in cases {
        let got = classify(text, &rules).topic.map(|r| r.topic.as_str());
        assert_eq!(got, want, "{text:?}");
    }
    assert!(classify("my bill", &[]).topic.is_none());
}

#[test]
fn keywords_are_checked() {
    assert!(check_keyword("lost|stolen card").is_ok());
    assert!(check_keyword("reembolso*").is_ok());
    assert!(check_keyword("Reclamación").is_ok());
    for bad in [
        "",
        "  ",
        "a||b",
        "c-d",
        "*",
        "x y*z",
        &"a".repeat(MAX_KEYWORD_LEN + 1),
    ] {
        assert!(check_keyword(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn reason_ids_are_stable_and_round_trip() {
    let ids: Vec<&str> = UrgentReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        ids,
        [
            "chest_pain",
            "heart_attack",
            "cant_breathe",
            "suicide",
            "self_harm",
            "overdose",
            "stroke",
            "heavy_bleeding"
        ]
    );
    for reason in UrgentReason::ALL {
        assert_eq!(UrgentReason::from_id(reason.as_str()), Some(reason));
    }
    assert_eq!(UrgentReason::from_id("fever"), None);
}

#[test]
fn only_the_start_of_a_long_text_is_read() {
    let padding = "é".repeat(MAX_CLASSIFIED_BYTES);
    assert_eq!(urgent_of(&format!("{padding} chest pain")), None);
    assert_eq!(
        urgent_of(&format!("chest pain {padding}")),
        Some("chest_pain")
    );
    // a cut in the middle of a character is moved back to its start
    let odd = format!("a{padding}");
    assert_eq!(classify(&odd, &[]).urgent, None);
}
