//! The word tables behind [`super::classify`]: emergency phrases (English and
//! Spanish), negations, language markers and the built-in topic keywords.
//! Phrases use the pattern syntax of [`super`]: words in folded form (no
//! accents, lowercase, no apostrophes), `|` between alternatives, `*` for
//! any ending.

use super::UrgentReason;
use super::UrgentReason::*;

/// One row of the urgency table.
pub(super) struct UrgentRow {
    pub reason: UrgentReason,
    pub phrase: &'static str,
    /// Next words that make the phrase mean something else.
    pub unless_next: &'static [&'static str],
}

const fn row(reason: UrgentReason, phrase: &'static str) -> UrgentRow {
    UrgentRow {
        reason,
        phrase,
        unless_next: &[],
    }
}

/// Emergency phrases. Each is matched on whole words; a plain "bleeding" or
/// "sangrado" is not urgent (gums, a nosebleed), only heavy bleeding is.
pub(super) const URGENT: &[UrgentRow] = &[
    // English
    row(ChestPain, "chest pain|pains|painful|pressure|tightness"),
    row(ChestPain, "chest hurts|hurt|hurting|aches|ache"),
    row(ChestPain, "pain|pains in|on my|the chest"),
    row(HeartAttack, "heart attack"),
    row(CantBreathe, "cant|cannot|couldnt breathe"),
    row(CantBreathe, "can|could not breathe"),
    row(CantBreathe, "unable to breathe"),
    row(CantBreathe, "hard to breathe"),
    row(CantBreathe, "trouble|difficulty|struggling breathing"),
    row(CantBreathe, "cant|cannot catch my breath"),
    row(Suicide, "suicid*"),
    row(Suicide, "kill|killing myself"),
    row(Suicide, "end|ending my life"),
    row(Suicide, "take|taking my own life"),
    row(Suicide, "want|wanna to die"),
    row(SelfHarm, "self harm|harming|injury"),
    row(SelfHarm, "selfharm*"),
    row(SelfHarm, "hurt|hurting|harm|harming|cut|cutting myself"),
    row(Overdose, "overdos*"),
    row(Overdose, "too many pills"),
    UrgentRow {
        reason: Stroke,
        phrase: "stroke",
        // "a stroke of luck", "at the stroke of midnight"
        unless_next: &["of"],
    },
    row(HeavyBleeding, "bleeding heavily|badly|profusely"),
    row(HeavyBleeding, "bleeding a lot"),
    row(
        HeavyBleeding,
        "heavy|severe|uncontrolled|uncontrollable bleeding",
    ),
    row(HeavyBleeding, "wont|cant|doesnt stop bleeding"),
    row(HeavyBleeding, "bleeding wont|doesnt stop"),
    row(HeavyBleeding, "hemorrhag*|haemorrhag*"),
    row(HeavyBleeding, "losing|lost a lot of blood"),
    row(HeavyBleeding, "lots of blood"),
    // Spanish
    row(ChestPain, "dolor|dolores de|en pecho"),
    row(ChestPain, "dolor|dolores en el pecho"),
    row(ChestPain, "duele el pecho"),
    row(ChestPain, "dolor toracico"),
    row(ChestPain, "presion|opresion en el pecho"),
    row(HeartAttack, "infarto"),
    row(HeartAttack, "ataque al corazon"),
    row(HeartAttack, "ataque cardiaco"),
    row(CantBreathe, "no puedo|podia|puede respirar"),
    row(CantBreathe, "dificultad para respirar"),
    row(CantBreathe, "me cuesta respirar"),
    row(CantBreathe, "me falta el aire"),
    row(CantBreathe, "me estoy ahogando"),
    row(Suicide, "quitarme la vida"),
    row(Suicide, "matarme"),
    row(Suicide, "quiero morir|morirme"),
    row(Suicide, "acabar con mi vida"),
    row(SelfHarm, "autolesion*"),
    row(SelfHarm, "hacerme dano"),
    row(SelfHarm, "lastimarme|cortarme"),
    row(Overdose, "sobredosis"),
    row(Overdose, "demasiadas pastillas"),
    UrgentRow {
        reason: Stroke,
        phrase: "derrame",
        // "un derrame de aceite" is a spill; "un derrame (cerebral)" is a stroke.
        unless_next: &["de"],
    },
    row(Stroke, "ictus"),
    row(Stroke, "accidente cerebrovascular"),
    row(Stroke, "embolia cerebral"),
    row(
        HeavyBleeding,
        "sangrado|hemorragia abundante|fuerte|intenso|intensa|excesivo|grave",
    ),
    row(HeavyBleeding, "hemorragia"),
    row(HeavyBleeding, "sangrando|sangro|sangra mucho"),
    row(HeavyBleeding, "mucha sangre"),
    row(HeavyBleeding, "no para|deja de sangrar"),
];

/// Words that negate a phrase after them.
pub(super) const NEGATIONS: &[&str] = &[
    "no", "not", "without", "denies", "deny", "denied", "denying", "never", "dont", "doesnt",
    "didnt", "isnt", "arent", "wasnt", "havent", "hasnt", "hadnt", "nor", "neither", "negative",
    "sin", "niega", "niego", "nego", "nunca", "jamas", "ni", "tampoco", "ningun", "ninguna",
    "ninguno", "nada",
];

/// Words that may stand between a negation and what it negates ("I don't
/// have any chest pain", "no he tenido dolor de pecho").
pub(super) const NEGATION_FILLERS: &[&str] = &[
    "any",
    "a",
    "an",
    "the",
    "some",
    "more",
    "real",
    "further",
    "other",
    "signs",
    "sign",
    "symptoms",
    "symptom",
    "of",
    "have",
    "has",
    "had",
    "having",
    "been",
    "experiencing",
    "experienced",
    "feel",
    "feeling",
    "felt",
    "do",
    "does",
    "did",
    "am",
    "is",
    "are",
    "was",
    "were",
    "report",
    "reports",
    "reported",
    "currently",
    "tengo",
    "tiene",
    "tienen",
    "tuve",
    "tuvo",
    "tenido",
    "he",
    "ha",
    "hay",
    "siento",
    "sentido",
    "senti",
    "presenta",
    "presento",
    "algun",
    "alguna",
    "el",
    "la",
    "los",
    "las",
    "un",
    "una",
    "mas",
    "ya",
    "signos",
    "sintomas",
    "de",
];

/// Words seen often in English and rarely in Spanish text.
pub(super) const ENGLISH_MARKERS: &[&str] = &[
    "the",
    "and",
    "is",
    "are",
    "was",
    "my",
    "i",
    "im",
    "you",
    "your",
    "have",
    "has",
    "to",
    "of",
    "with",
    "not",
    "can",
    "cant",
    "it",
    "its",
    "this",
    "that",
    "for",
    "please",
    "help",
    "need",
    "what",
    "how",
    "when",
    "why",
    "would",
    "could",
    "hello",
    "hi",
    "thanks",
    "thank",
    "about",
    "from",
    "am",
    "do",
    "dont",
    "get",
    "want",
    "pain",
    "bill",
    "appointment",
    "insurance",
    "be",
    "been",
    "will",
    "there",
    "our",
    "we",
    "they",
    "he",
    "she",
    "since",
    "yesterday",
    "today",
];

/// Words seen often in Spanish and rarely in English text.
pub(super) const SPANISH_MARKERS: &[&str] = &[
    "el", "la", "los", "las", "de", "del", "que", "y", "en", "un", "una", "es", "mi", "mis", "por",
    "para", "con", "tengo", "necesito", "ayuda", "hola", "gracias", "como", "estoy", "esta",
    "pero", "lo", "al", "su", "quiero", "puedo", "cita", "factura", "dolor", "pecho", "seguro",
    "medico", "favor", "buenos", "buenas", "dias", "tardes", "usted", "ustedes", "cuando",
    "porque", "donde", "tiene", "hacer", "desde", "ayer", "hoy", "muy", "mucho", "sangre",
    "respirar",
];

/// Letters and signs of Spanish; any of them in a text counts once for Spanish.
pub(super) const SPANISH_LETTERS: &[char] = &[
    'ñ', 'Ñ', '¿', '¡', 'á', 'é', 'í', 'ó', 'ú', 'Á', 'É', 'Í', 'Ó', 'Ú',
];

/// The topics Careline knows keywords for; a tenant maps them to its queues.
pub const BUILTIN_TOPICS: &[&str] = &[
    "claims",
    "billing",
    "password",
    "provider_search",
    "appointment",
    "coverage",
    "pcp_change",
    "complaint",
];

/// The built-in keywords (English and Spanish) of a built-in topic; empty for
/// any other topic id.
pub fn builtin_topic_keywords(topic: &str) -> &'static [&'static str] {
    match topic {
        "claims" => &[
            "claim|claims",
            "eob|eobs",
            "explanation of benefits",
            "reclamo|reclamos|reclamacion|reclamaciones",
            "explicacion de beneficios",
        ],
        "billing" => &[
            "bill|bills|billing|billed",
            "invoice*",
            "payment|payments",
            "premium|premiums",
            "charge|charged|charges",
            "refund*",
            "factura*",
            "cobro|cobros|cobraron",
            "pago|pagos|pagar",
            "prima|primas",
            "reembolso*",
        ],
        "password" => &[
            "password|passwords|passcode",
            "log|sign in",
            "login|signin",
            "locked out",
            "username",
            "contrasena|contrasenas",
            "clave",
            "iniciar sesion",
            "usuario",
        ],
        "provider_search" => &[
            "find|finding a|an doctor|provider|specialist|dentist",
            "in network",
            "provider directory",
            "doctor|doctors near me",
            "buscar|encontrar un|una medico|doctor|doctora|especialista|proveedor|dentista",
            "directorio de proveedores",
        ],
        "appointment" => &[
            "appointment*",
            "schedule|reschedule|book a visit",
            "cita|citas",
            "agendar|reprogramar",
        ],
        "coverage" => &[
            "coverage",
            "covered|cover|covers",
            "deductible*",
            "copay*",
            "prior authorization",
            "cobertura",
            "cubre|cubierto|cubierta",
            "deducible",
            "copago*",
        ],
        "pcp_change" => &[
            "pcp",
            "primary care",
            "primary doctor|physician",
            "medico|doctor de cabecera",
            "medico|doctor primario",
            "cambiar de medico|doctor",
        ],
        "complaint" => &[
            "complaint|complaints|complain",
            "grievance*",
            "unhappy|dissatisfied",
            "queja|quejas|quejarme",
            "inconforme|insatisfecho|insatisfecha",
        ],
        _ => &[],
    }
}
