//! The expected-benefit policy of PRODUCT.md: scores a client from its CRM
//! record, the policy's weights and an optional promotion, and picks the
//! tier. Pure: no I/O, no clock (the caller passes `now`), so every term,
//! boundary and floor is unit-tested here, and the same function serves
//! the replica and the remote CRM modes.

use chrono::{DateTime, Utc};
use tierflow_api::model::{
    ClientData, Customer, Explanation, Policy, Promotion, Reason, Terms, Tier,
};

/// The customer a lookup found, and what matched it (`phone`, `ip`).
pub type Matched<'a> = Option<(&'a Customer, &'static str)>;

/// Tiers ordered for choosing: ascending `min_benefit`, ties by name so
/// the order (and so every decision) is the same on every controller.
pub fn sort_tiers(tiers: &mut [Tier]) {
    tiers.sort_by(|a, b| {
        a.min_benefit
            .total_cmp(&b.min_benefit)
            .then_with(|| a.name.cmp(&b.name))
    });
}

/// The weighted terms of the benefit sum for a customer.
pub fn terms(c: &Customer, p: &Policy) -> Terms {
    let w = p.weights;
    Terms {
        margin: w.margin * c.annual_revenue * c.margin_pct / 100.0,
        opportunity: w.opportunity * c.open_opportunity_value * c.win_probability,
        retention: w.retention * c.lifetime_value * c.churn_risk,
        promotion: 0.0,
    }
}

fn rank(sorted: &[Tier], name: &str) -> Option<usize> {
    sorted.iter().position(|t| t.name == name)
}

/// How the tier was reached, for the explanation's sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The customer's benefit reached a tier.
    Scored,
    /// The customer's benefit is below every tier: default tier.
    BelowEveryTier,
    /// No customer matched: default tier.
    NoCustomer,
}

/// What became of the promotion code the client gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromoNote {
    /// No code, or a valid one that did not change the tier.
    None,
    /// A valid code lifted the tier.
    Lifted,
    /// The code's promotion has expired.
    Expired,
    /// No promotion has that code.
    Unknown,
}

/// A decision, borrowing what it was made from.
#[derive(Debug, Clone, Copy)]
pub struct Choice<'a> {
    pub customer: Matched<'a>,
    /// The valid promotion that counted, if any.
    pub promotion: Option<&'a Promotion>,
    pub note: PromoNote,
    pub basis: Basis,
    pub weights: tierflow_api::model::Weights,
    pub terms: Terms,
    pub tier: &'a Tier,
    pub reason: Reason,
}

impl Choice<'_> {
    /// The benefit: the sum of the terms.
    pub fn benefit(&self) -> f64 {
        benefit(&self.terms)
    }

    /// The API's explanation of this decision for a client that gave
    /// `inputs`.
    pub fn explanation(&self, inputs: &ClientData) -> Explanation {
        Explanation {
            inputs: inputs.clone(),
            customer_id: self.customer.map(|(c, _)| c.id.clone()),
            matched_by: self.customer.map(|(_, by)| by.to_string()),
            promotion: self.promotion.map(|p| p.code.clone()),
            weights: self.weights,
            terms: self.terms,
            benefit: self.benefit(),
            tier: self.tier.name.clone(),
            reason: self.reason,
            detail: detail(&Sentence {
                basis: self.basis,
                customer: self.customer.map(|(c, by)| (c.id.as_str(), by)),
                terms: &self.terms,
                note: self.note,
                promotion: self.promotion.map(|p| p.code.as_str()),
                code: inputs.promo_code.as_deref(),
                tier: &self.tier.name,
            }),
            warnings: Vec::new(),
        }
    }
}

/// The sum of the terms.
pub fn benefit(t: &Terms) -> f64 {
    t.margin + t.opportunity + t.retention + t.promotion
}

/// What the explanation's sentence is made of.
#[derive(Debug, Clone, Copy)]
pub struct Sentence<'a> {
    pub basis: Basis,
    /// Customer id and what matched it.
    pub customer: Option<(&'a str, &'a str)>,
    pub terms: &'a Terms,
    pub note: PromoNote,
    /// The promotion that lifted the tier.
    pub promotion: Option<&'a str>,
    /// The code the client gave.
    pub code: Option<&'a str>,
    pub tier: &'a str,
}

/// The explanation's one sentence for people. The one place its wording
/// lives: sessions keep a decision's parts, not its text, and build the
/// sentence when the API asks.
pub fn detail(s: &Sentence<'_>) -> String {
    s.to_string()
}

/// Written piece by piece into one buffer (each admission's log line
/// carries the sentence).
impl std::fmt::Display for Sentence<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self;
        let without_promo = s.terms.margin + s.terms.opportunity + s.terms.retention;
        let (id, by) = s.customer.unwrap_or(("?", "?"));
        match s.basis {
            Basis::Scored => write!(
                f,
                "customer {id} (matched by {by}) scores {without_promo:.2}"
            )?,
            Basis::BelowEveryTier => write!(
                f,
                "customer {id} scores {without_promo:.2}, below every tier: default tier"
            )?,
            Basis::NoCustomer => f.write_str("no customer matches the client: default tier")?,
        }
        match s.note {
            PromoNote::Lifted => {
                write!(f, "; promotion {} lifts it", s.promotion.unwrap_or("?"))?;
            }
            PromoNote::Expired | PromoNote::Unknown => {
                let why = if s.note == PromoNote::Expired {
                    "expired"
                } else {
                    "unknown"
                };
                write!(f, "; promotion code {} is {why}", s.code.unwrap_or("?"))?;
            }
            PromoNote::None => {}
        }
        write!(f, ": tier {}", s.tier)
    }
}

/// Scores a session request and picks its tier. `tiers` must be sorted
/// with [`sort_tiers`]. `None` only when there is no tier at all (the
/// session then gets plain forwarding).
pub fn choose<'a>(
    code_given: bool,
    customer: Matched<'a>,
    promotion: Option<&'a Promotion>,
    policy: &Policy,
    tiers: &'a [Tier],
    now: DateTime<Utc>,
) -> Option<Choice<'a>> {
    let lowest = tiers.first()?;
    // A default tier that does not exist (deleted behind the API's back)
    // falls back to the lowest tier rather than refusing the session.
    let default_rank = rank(tiers, &policy.default_tier).unwrap_or(0);
    let promo = promotion.filter(|p| p.valid_at(now));
    let mut t = customer.map_or_else(Terms::default, |(c, _)| terms(c, policy));
    let without_promo = t.margin + t.opportunity + t.retention;
    t.promotion = promo.map_or(0.0, |p| p.benefit_boost);
    let benefit = without_promo + t.promotion;

    // The tier with the highest min_benefit not above the benefit.
    let by_benefit = |b: f64| tiers.iter().rposition(|x| x.min_benefit <= b);
    let (mut chosen, mut reason, basis) = match customer {
        Some(_) => match by_benefit(without_promo) {
            Some(r) => (r, Reason::Automatic, Basis::Scored),
            None => (default_rank, Reason::Default, Basis::BelowEveryTier),
        },
        None => (default_rank, Reason::Default, Basis::NoCustomer),
    };
    let mut note = PromoNote::None;
    if let Some(p) = promo {
        // A promotion only ever lifts: its boost re-scores, its tier is a floor.
        let boosted = by_benefit(benefit).unwrap_or(0);
        let floor = p.tier.as_deref().and_then(|n| rank(tiers, n)).unwrap_or(0);
        let lifted = boosted.max(floor);
        if lifted > chosen {
            chosen = lifted;
            reason = Reason::Promotion;
            note = PromoNote::Lifted;
        }
    } else if code_given {
        note = if promotion.is_some() {
            PromoNote::Expired
        } else {
            PromoNote::Unknown
        };
    }
    Some(Choice {
        customer,
        promotion: promo,
        note,
        basis,
        weights: policy.weights,
        terms: t,
        tier: tiers.get(chosen).unwrap_or(lowest),
        reason,
    })
}

/// [`choose`], explained.
pub fn decide(
    inputs: &ClientData,
    customer: Matched<'_>,
    promotion: Option<&Promotion>,
    policy: &Policy,
    tiers: &[Tier],
    now: DateTime<Utc>,
) -> Option<Explanation> {
    choose(
        inputs.promo_code.is_some(),
        customer,
        promotion,
        policy,
        tiers,
        now,
    )
    .map(|c| c.explanation(inputs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierflow_api::model::Weights;

    fn tier(name: &str, min: f64) -> Tier {
        Tier {
            name: name.into(),
            min_benefit: min,
            rate_kbps: 1000,
            burst_kbits: 100,
            dscp: 0,
            queue_id: 0,
            queue_min_kbps: 0,
            hold_rate_kbps: 64,
        }
    }

    fn tiers() -> Vec<Tier> {
        let mut t = vec![
            tier("gold", 20_000.0),
            tier("best-effort", 0.0),
            tier("silver", 5_000.0),
            tier("bronze", 1.0),
        ];
        sort_tiers(&mut t);
        t
    }

    fn acme() -> Customer {
        serde_json::from_str(
            r#"{"id": "c-1001", "name": "Acme Corp", "phones": ["+14155550100"], "ips": ["10.0.0.1"],
 "lifetime_value": 250000.0, "annual_revenue": 80000.0, "margin_pct": 22.5,
 "open_opportunity_value": 40000.0, "win_probability": 0.35, "churn_risk": 0.1,
 "segment": "enterprise"}"#,
        )
        .expect("customer")
    }

    /// A customer whose only term is `margin` = `v`.
    fn worth(v: f64) -> Customer {
        Customer {
            annual_revenue: v,
            margin_pct: 100.0,
            lifetime_value: 0.0,
            open_opportunity_value: 0.0,
            ..acme()
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-23T12:00:00Z".parse().expect("time")
    }

    fn promo(code: &str, boost: f64, tier: Option<&str>, expires: Option<&str>) -> Promotion {
        Promotion {
            code: code.into(),
            benefit_boost: boost,
            tier: tier.map(String::from),
            expires_at: expires.map(|e| e.parse().expect("time")),
        }
    }

    fn run(c: Option<&Customer>, p: Option<&Promotion>) -> Explanation {
        decide(
            &ClientData::default(),
            c.map(|c| (c, "ip")),
            p,
            &Policy::default(),
            &tiers(),
            now(),
        )
        .expect("tiers exist")
    }

    #[test]
    fn every_term_of_the_product_md_formula() {
        let e = run(Some(&acme()), None);
        // 80000 * 22.5 / 100, 40000 * 0.35, 250000 * 0.1
        assert_eq!(e.terms.margin, 18_000.0);
        assert_eq!(e.terms.opportunity, 14_000.0);
        assert_eq!(e.terms.retention, 25_000.0);
        assert_eq!(e.terms.promotion, 0.0);
        assert_eq!(e.benefit, 57_000.0);
        assert_eq!((e.tier.as_str(), e.reason), ("gold", Reason::Automatic));
        assert_eq!(e.customer_id.as_deref(), Some("c-1001"));
        assert_eq!(e.matched_by.as_deref(), Some("ip"));
    }

    #[test]
    fn weights_scale_each_term() {
        let policy = Policy {
            weights: Weights {
                margin: 2.0,
                opportunity: 0.5,
                retention: 0.0,
            },
            ..Policy::default()
        };
        let t = terms(&acme(), &policy);
        assert_eq!(
            (t.margin, t.opportunity, t.retention),
            (36_000.0, 7_000.0, 0.0)
        );
    }

    #[test]
    fn boundaries_a_benefit_equal_to_min_benefit_earns_the_tier() {
        for (v, want) in [
            (20_000.0, "gold"),
            (19_999.99, "silver"),
            (5_000.0, "silver"),
            (4_999.0, "bronze"),
            (1.0, "bronze"),
            (0.5, "best-effort"),
            (0.0, "best-effort"),
        ] {
            assert_eq!(run(Some(&worth(v)), None).tier, want, "benefit {v}");
        }
    }

    #[test]
    fn unknown_clients_get_the_default_tier() {
        let e = run(None, None);
        assert_eq!(
            (e.tier.as_str(), e.reason),
            ("best-effort", Reason::Default)
        );
        assert_eq!(e.benefit, 0.0);
        let policy = Policy {
            default_tier: "bronze".into(),
            ..Policy::default()
        };
        let e = decide(&ClientData::default(), None, None, &policy, &tiers(), now()).expect("tier");
        assert_eq!(e.tier, "bronze");
        // A default tier that no longer exists: the lowest tier.
        let policy = Policy {
            default_tier: "gone".into(),
            ..Policy::default()
        };
        let e = decide(&ClientData::default(), None, None, &policy, &tiers(), now()).expect("tier");
        assert_eq!(e.tier, "best-effort");
        assert!(decide(&ClientData::default(), None, None, &policy, &[], now()).is_none());
    }

    #[test]
    fn a_customer_below_every_tier_gets_the_default_tier() {
        let mut t = tiers();
        t.retain(|t| t.name != "best-effort");
        let policy = Policy {
            default_tier: "bronze".into(),
            ..Policy::default()
        };
        let c = worth(0.0);
        let e = decide(
            &ClientData::default(),
            Some((&c, "phone")),
            None,
            &policy,
            &t,
            now(),
        )
        .expect("tier");
        assert_eq!((e.tier.as_str(), e.reason), ("bronze", Reason::Default));
    }

    #[test]
    fn promotion_boost_adds_to_the_benefit_and_lifts() {
        let p = promo("SPRING", 2_500.0, None, Some("2027-03-31T00:00:00Z"));
        let e = run(Some(&worth(3_000.0)), Some(&p));
        assert_eq!(e.terms.promotion, 2_500.0);
        assert_eq!(e.benefit, 5_500.0);
        assert_eq!((e.tier.as_str(), e.reason), ("silver", Reason::Promotion));
        assert_eq!(e.promotion.as_deref(), Some("SPRING"));
        // A boost that changes nothing leaves the reason automatic.
        let e = run(Some(&worth(30_000.0)), Some(&p));
        assert_eq!((e.tier.as_str(), e.reason), ("gold", Reason::Automatic));
        assert_eq!(e.benefit, 32_500.0);
    }

    #[test]
    fn promotion_tier_is_a_floor_never_a_ceiling() {
        let pass = promo("GOLDPASS", 0.0, Some("gold"), None);
        let e = run(Some(&worth(10.0)), Some(&pass));
        assert_eq!((e.tier.as_str(), e.reason), ("gold", Reason::Promotion));
        let silver_pass = promo("SILVERPASS", 0.0, Some("silver"), None);
        let e = run(Some(&worth(25_000.0)), Some(&silver_pass));
        assert_eq!((e.tier.as_str(), e.reason), ("gold", Reason::Automatic));
        // Unknown clients with a valid code are lifted too.
        let e = run(None, Some(&pass));
        assert_eq!((e.tier.as_str(), e.reason), ("gold", Reason::Promotion));
        // A floor naming a tier that does not exist is ignored.
        let ghost = promo("GHOST", 0.0, Some("platinum"), None);
        assert_eq!(run(Some(&worth(10.0)), Some(&ghost)).tier, "bronze");
    }

    #[test]
    fn expired_promotions_do_not_count() {
        let old = promo("OLD", 1e9, Some("gold"), Some("2026-11-23T12:00:00Z"));
        let inputs = ClientData {
            promo_code: Some("OLD".into()),
            ..ClientData::default()
        };
        let c = worth(10.0);
        let e = decide(
            &inputs,
            Some((&c, "ip")),
            Some(&old),
            &Policy::default(),
            &tiers(),
            now(),
        )
        .expect("tier");
        assert_eq!((e.tier.as_str(), e.reason), ("bronze", Reason::Automatic));
        assert_eq!(e.terms.promotion, 0.0);
        assert!(e.promotion.is_none());
        assert!(e.detail.contains("OLD is expired"), "{}", e.detail);
        let e = decide(
            &inputs,
            Some((&c, "ip")),
            None,
            &Policy::default(),
            &tiers(),
            now(),
        )
        .expect("tier");
        assert!(e.detail.contains("OLD is unknown"), "{}", e.detail);
    }

    #[test]
    fn explanation_records_the_inputs() {
        let inputs = ClientData {
            ip: "10.0.0.1".parse().ok(),
            phone: Some("+14155550100".into()),
            source: Some("sip".into()),
            ..ClientData::default()
        };
        let c = acme();
        let e = decide(
            &inputs,
            Some((&c, "phone")),
            None,
            &Policy::default(),
            &tiers(),
            now(),
        )
        .expect("tier");
        assert_eq!(e.inputs, inputs);
        assert_eq!(e.weights, Weights::default());
        assert!(e.detail.ends_with("tier gold"), "{}", e.detail);
    }
}
