//! The word-list part of the local backend: a heuristic for English, and the whole backend when
//! the embedded model cannot be loaded.
//!
//! - **rustrict** (word matching that sees through leetspeak, spacing, repeated and confusable
//!   characters and self-censoring: "f u c k", "b1tch", "kys") gives a severity per type
//!   (profane, offensive, sexual, mean).
//! - **alt-profanity-check's linear model** ([`super::linear`]; TF-IDF + calibrated linear SVMs
//!   trained on 200k human-labelled comments) gives a probability that the text is offensive.
//!
//! The headline is the higher of the two, with two corrections: profanity aimed at nobody
//! ("holy shit this is amazing") is capped below 0.7, and a short list of threat and
//! dehumanisation patterns with no swear word ("I know where you live", "they are vermin")
//! raises the score. Tuned for a threshold of 0.7 ([`THRESHOLD`]).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use rustrict::{Censor, Type};

use super::linear::LinearModel;
use crate::model::Scores;

/// Longer texts are scored on their first 20 KB (as with Perspective), keeping the time per text
/// bounded.
pub const MAX_TEXT_BYTES: usize = 20 * 1024;
pub const MODEL: &str = "rustrict 0.7 + alt-profanity-check 1.9.1 linear model + patterns";
/// The threshold the word lists were tuned for.
pub const THRESHOLD: f64 = 0.7;

/// rustrict's verdict: severity 0 (none) to 3 (severe) per type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wordlist {
    pub profane: u8,
    pub offensive: u8,
    pub sexual: u8,
    pub mean: u8,
}

impl Wordlist {
    pub fn of(text: &str) -> Self {
        Self::from_type(Censor::from_str(text).analyze())
    }

    fn from_type(t: Type) -> Self {
        let level = |kind: Type| -> u8 {
            if t.is(kind & Type::SEVERE) {
                3
            } else if t.is(kind & Type::MODERATE) {
                2
            } else if t.is(kind & Type::MILD) {
                1
            } else {
                0
            }
        };
        Wordlist {
            profane: level(Type::PROFANE),
            offensive: level(Type::OFFENSIVE),
            sexual: level(Type::SEXUAL),
            mean: level(Type::MEAN),
        }
    }

    pub fn max(&self) -> u8 {
        self.profane
            .max(self.offensive)
            .max(self.sexual)
            .max(self.mean)
    }
}

/// Profanity aimed at nobody ("holy shit this is amazing", "the damn printer") is held below the
/// default threshold: it is shown in the `profanity` category, but it is not abuse.
pub const UNDIRECTED_CAP: f64 = 0.6;
/// The score a pattern match (a threat, incitement to self-harm, dehumanising a group) gives.
pub const PATTERN_SCORE: f64 = 0.85;

/// rustrict's profane/sexual/offensive severity on 0..1.
pub fn severity_score(level: u8) -> f64 {
    match level {
        0 => 0.0,
        1 => 0.5,
        2 => 0.8,
        _ => 0.95,
    }
}

/// rustrict's "mean" severity on 0..1 when aimed at someone (an undirected "ugly" or "stupid" is
/// criticism more often than abuse, so it counts for little).
fn mean_score(level: u8, directed: bool) -> f64 {
    match (level, directed) {
        (0, _) => 0.0,
        (_, false) => 0.4,
        (1, true) => 0.75,
        (2, true) => 0.85,
        (_, true) => 0.95,
    }
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid built-in pattern")
}

/// A list of patterns matched in one pass (one automaton instead of one per pattern).
fn regex_set<S: AsRef<str>>(patterns: impl IntoIterator<Item = S>) -> RegexSet {
    RegexSet::new(patterns).expect("valid built-in patterns")
}

/// Second person, an imperative aimed at someone, an exclamation about someone ("what a …"), or a
/// group of people (for generalisations).
static SECOND_PERSON: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"\b(you|your|yours|yourself|yourselves|you're|youre|ya|u|ur|y'all|yall|thou)\b")
});
static IMPERATIVE: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"^(shut up|stfu|gtfo|go (die|away|cry|to hell|back)|get (lost|out|a life|cancer|fucked)|eat |suck |drink |die\b|kys\b|quit\b|delete\b|leave\b|piss off|f\W*off|fuck off)|^what an? ",
    )
});
/// After rustrict's censoring: a censored word followed by "off"/"up" ("f.u.c.k off").
static CENSORED_IMPERATIVE: LazyLock<Regex> = LazyLock::new(|| regex(r"\*[\W_]*\s+(off|up)\b"));
const GROUPS: &str = r"(immigrants?|migrants?|refugees?|muslims?|jews?|christians?|blacks?|black people|whites|white people|asians?|mexicans?|arabs?|gays?|gay people|lesbians?|trans people|trannies|women|girls|females|disabled people|old people|boomers|fat people|poor people|those people|these people|you people|your kind|their kind|they|them)";
/// A group named by a noun (not "they"/"them", which also name a football team).
static GROUP_NOUN: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"\b{}\b",
        GROUPS.trim_end_matches("|they|them)").to_string() + ")"
    ))
});

/// Words that make a sentence addressed to someone an insult even when no word list knows them.
static INSULT_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"\b(worthless|pathetic|pitiful|clown|muppet|tool|fool|joke|loser|idiot|moron|imbecile|halfwit|nitwit|dimwit|dunce|buffoon|numpty|plonker|prat|weirdo|creep|freak|troll|coward|liar|failure|disgrace|embarrassment|parasite|leech|pest|scum|trash|garbage|rubbish|slob|pig|cow|rat|snake|crybaby|whiny|sad little|waste of (space|oxygen|air|skin)|braindead|brain dead|brainless|clueless|spineless|gutless|hopeless|useless|ignorant|delusional|deranged|unhinged|vile|repulsive|revolting|disgusting|hideous|creepy|incompetent|inept|stupid|stupidest|dumb|dumber|dumbest|dense|ugly|iq of an?|disappointed in (you|u)|ashamed of (you|u)|laughing at (you|u))\b",
    )
});

/// Reported speech: a quotation with a verb of saying, or "called me …". What is reported is not
/// the author's own abuse.
static REPORTING: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"\b(said|says|say|saying|commented|comments|wrote|writes|yells?|yelled|shouts?|shouted|lyrics?|quote|quoted|the word|the phrase|messaged|trailer|scene)\b",
    )
});
static QUOTED_SPAN: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r#"(^|[\s(:])['"\u{201c}\u{2018}][^'"\u{201c}\u{201d}\u{2018}\u{2019}]{2,}['"\u{201d}\u{2019}]($|[\s.,!?;:)])"#,
    )
});
static CALLED_ME: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b(called|calling|calls|call) (me|him|her|them|us)\b"));

/// Threats with no swear word in them.
static THREATS: LazyLock<RegexSet> = LazyLock::new(|| {
    regex_set([
        r"\b(i|we)('ll| will|'m going to|'m gonna| am going to| are going to|'re going to| gonna| will find and)( \w+)? (kill|hurt|find|end|stab|shoot|beat|break|slit|burn|murder|strangle|choke|punch|smash|hunt|cut|rape|bury|get) (you|your|u|ur|ya)\b",
        r"\bi know where (you|u) live",
        r"\b(i|we) (have|got|found|know) (your|ur) (home |house |real )?address",
        r"\bwatch (your|ur) back\b",
        r"\bsleep with one eye open",
        r"\byou('ll| will) (pay|regret it|regret this|be sorry)\b.{0,20}\b(promise|swear|this|that|it)\b",
        r"\bmake (you|u) (regret|pay|suffer)",
        r"\bbullet (in|through) (your|ur|his|her|their) (head|skull|face)",
        r"\bdeserves? to (die|be shot|be killed|be hanged|be hung|suffer|be raped|be beaten)",
        r"\b(hope|wish) (someone|somebody|you|u) (burns?|kills?|shoots?|stabs?|dies|die|gets? (hit|shot|stabbed|killed|raped|run over))",
        r"\byour (kids|children|family|wife|husband|mom|mother|dad|father|daughter|son|sister|brother)( \w+)? (won't|will not|wont|aren't|are not|isn't|is not) (be )?safe",
        r"\bi('m| am) coming (to|for) (your|you|ur|u)\b",
        r"\bend up (in a ditch|in (the|a) (hospital|grave|morgue|ditch|body bag)|dead)",
        r"\b(better hope|pray) (we|i) never meet",
        r"\bwon't see (it|the next \w+) coming",
        r"\b(i|we)\b[^.!?]{0,30}\b(kill|hurt|stab|shoot|beat|break|smash|slit|burn|murder|strangle|choke|punch|hunt|bury|cripple|maim|torture|rape|strangle)\b[^.!?]{0,20}\b(you|your|u|ur)\b",
        r"\b(you|u)('ll| will)? never (walk|see|breathe|wake up|talk) again",
        r"\b(in an ambulance|in a body bag|six feet under|in a coffin|in a wheelchair)\b",
        r"\bwhat happens to (your|ur) (car|house|home|family|kids|children|dog|cat|wife|husband|face)",
        r"\bwhat's coming (to|for) (you|u)\b",
        r"\bshow(ing|s)? up at (your|ur) (door|house|home|work|job|school|place)",
    ])
});

/// Telling someone to harm themselves, wishing them dead, driving them away.
static HARASSMENT: LazyLock<RegexSet> = LazyLock::new(|| {
    regex_set([
        r"\b(kill|hang|off|end) (yourself|urself|yourselves|ur self|your self|your life)\b",
        r"\bkys\b",
        r"\b(go|just) (die|jump off)\b",
        r"\bjump off a (bridge|building|cliff|roof)",
        r"\bdrink (bleach|poison)",
        r"^(get|catch) (cancer|aids)|\b(hope|wish) (you|u) (get|catch) (cancer|aids)",
        r"\byou should (just )?(end it|die|disappear|not exist|not be alive)",
        r"\bworld (would be|is|'d be|will be) better (off )?without (you|u|people like you|your kind)",
        r"\b(nobody|no one|noone) (likes|wants|loves|cares about|will ever love|will love) (you|u)\b",
        r"\beveryone hates (you|u)\b",
        r"\bdelete (your|ur) account",
        r"\b(never|don't|dont) come back\b",
        r"\bdo (us|everyone|everybody|the world) a favou?r and",
        r"\bpost (your|ur) (photos|pics|pictures|nudes|address|number)",
        r"\bnew accounts until (you|u)\b",
        r"\bunalive\b",
        r"\b(nobody|no one|noone) (would|will) (miss|notice|care about) (you|u)\b",
        r"\bashamed to (even )?(exist|be alive|breathe)",
        r"\blog off (forever|for good)",
        r"\beveryone at (your|ur) (job|work|school|office)",
        r"\b(everyone|everybody|people) (is|are) laughing at (you|u)\b",
    ])
});

/// Dehumanising a group, or wanting it gone.
static DEHUMANISING: LazyLock<RegexSet> = LazyLock::new(|| {
    regex_set([
        format!(
            r"\b{GROUPS}\b[^.!?]{{0,40}}\b(are|is|r)\b[^.!?]{{0,20}}\b(vermin|animals|subhuman|sub-human|parasites|cockroaches|roaches|rats|an infestation|a plague|a disease|a cancer|savages|filth|scum|not human|terrorists|criminals|inferior|apes|monkeys|a burden)\b"
        ),
        format!(
            r"\b{GROUPS}\b[^.!?]{{0,60}}\b(should|must|need to|ought to) (just )?(be (deported|exterminated|wiped out|gassed|eradicated|eliminated|gotten rid of|got rid of|sterili[sz]ed|put down)|die)\b"
        ),
        r"\bgo back to (your|ur) (own )?(country|countries)\b".to_string(),
        r"\b(get|go) back (in|to) the kitchen\b".to_string(),
        format!(r"\b{GROUPS}\b[^.!?]{{0,20}}\b(belong|belongs) (in the kitchen|in a cage|in a zoo|in chains)"),
        format!(r"\b{GROUPS}\b[^.!?]{{0,30}}\b(shouldn't|should not|mustn't) be allowed (to|near|in)\b"),
        format!(r"\b{GROUPS}\b[^.!?]{{0,30}}\b(don't|do not|doesn't) deserve (rights|to live|respect|to exist)"),
        r"\b(those|these|you|filthy|dirty|all the)\s+(savages|animals|vermin|parasites|leeches|rats|cockroaches|subhumans|apes|monkeys)\b".to_string(),
        r"\b(fewer|less) of (them|those people|their kind)\b".to_string(),
        format!(r"\b{GROUPS}\b[^.!?]{{0,40}}\b(are|is|r)\b[^.!?]{{0,20}}\b(leeches|savages|pests)\b"),
    ])
});

/// Lowercased, curly apostrophes straightened, runs of one letter cut to one ("youuu" → "you"),
/// whitespace collapsed.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last: Option<char> = None;
    let mut run = 0;
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = match c {
            '\u{2018}' | '\u{2019}' | '`' => '\'',
            c if c.is_whitespace() => ' ',
            c => c,
        };
        if Some(c) == last {
            run += 1;
        } else {
            run = 1;
            last = Some(c);
        }
        if c == ' ' && run > 1 {
            continue;
        }
        out.push(c);
        // A third identical letter in a row: drop the run back to a single letter.
        if run == 3 && c.is_alphabetic() {
            out.pop();
            out.pop();
            out.pop();
            out.push(c);
        } else if run > 3 && c.is_alphabetic() {
            out.pop();
        }
    }
    out.trim().to_string()
}

/// Every signal the local backend computes for one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// alt-profanity-check's probability.
    pub model: f64,
    pub words: Wordlist,
    /// Addressed to someone or about a group of people.
    pub directed: bool,
    pub insult_word: bool,
    pub threat: bool,
    pub harassment: bool,
    pub dehumanising: bool,
    /// Reported speech ("he called me …", a quotation with "said"): capped like undirected text.
    pub reported: bool,
}

pub fn analyze(text: &str) -> Analysis {
    let (censored, kind) = Censor::from_str(text).censor_and_analyze();
    let norm = normalize(text);
    let second_person = SECOND_PERSON.is_match(&norm);
    let directed = second_person
        || IMPERATIVE.is_match(&norm)
        || CENSORED_IMPERATIVE.is_match(&censored.to_lowercase())
        || GROUP_NOUN.is_match(&norm);
    Analysis {
        model: LinearModel::embedded().probability(text),
        words: Wordlist::from_type(kind),
        directed,
        insult_word: second_person && INSULT_WORDS.is_match(&norm),
        threat: THREATS.is_match(&norm),
        harassment: HARASSMENT.is_match(&norm),
        dehumanising: DEHUMANISING.is_match(&norm),
        reported: CALLED_ME.is_match(&norm)
            || (REPORTING.is_match(&norm) && QUOTED_SPAN.is_match(&norm)),
    }
}

impl Analysis {
    pub fn scores(&self, truncated: bool) -> Scores {
        let w = &self.words;
        let flag = |b: bool| if b { PATTERN_SCORE } else { 0.0 };
        let profanity = self
            .model
            .max(severity_score(w.profane))
            .max(severity_score(w.sexual));
        let aimed = if self.directed {
            profanity
        } else {
            profanity.min(UNDIRECTED_CAP)
        };
        let insult =
            mean_score(w.mean, self.directed).max(if self.insult_word { 0.8 } else { 0.0 });
        let identity_attack = severity_score(w.offensive).max(flag(self.dehumanising));
        let threat = flag(self.threat);
        let harassment = flag(self.harassment);
        let sexual = severity_score(w.sexual);
        let mut toxicity = aimed
            .max(insult)
            .max(identity_attack)
            .max(threat)
            .max(harassment);
        if self.reported {
            toxicity = toxicity.min(UNDIRECTED_CAP);
        }
        let categories = BTreeMap::from([
            ("toxicity".to_string(), toxicity),
            ("profanity".to_string(), profanity),
            ("insult".to_string(), insult),
            ("identity_attack".to_string(), identity_attack),
            ("threat".to_string(), threat),
            ("harassment".to_string(), harassment),
            ("sexual".to_string(), sexual),
        ]);
        let raw_categories = BTreeMap::from([
            ("alt_profanity_check".to_string(), self.model),
            ("rustrict_profane".to_string(), f64::from(w.profane)),
            ("rustrict_offensive".to_string(), f64::from(w.offensive)),
            ("rustrict_sexual".to_string(), f64::from(w.sexual)),
            ("rustrict_mean".to_string(), f64::from(w.mean)),
            ("directed".to_string(), f64::from(u8::from(self.directed))),
            (
                "reported_speech".to_string(),
                f64::from(u8::from(self.reported)),
            ),
        ]);
        Scores {
            toxicity,
            categories,
            raw_categories,
            truncated,
        }
    }
}

/// Scores one text (the whole local pipeline, synchronous).
pub fn score_text(text: &str) -> Scores {
    let (text, truncated) = crate::toxicity::truncate_utf8(text, MAX_TEXT_BYTES);
    analyze(text).scores(truncated)
}
