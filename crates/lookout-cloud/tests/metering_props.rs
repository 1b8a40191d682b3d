//! Property tests of metering and rating arithmetic.

use lookout_cloud::ledger::{build_invoice, InvoiceInput, Line};
use lookout_cloud::metering::{interval_usage, PriceList, ResourceKind, Usage};
use lookout_cloud::money::{parse_decimal, Money, Price};
use lookout_cloud::InvoiceStatus;
use proptest::prelude::*;

fn prices() -> impl Strategy<Value = PriceList> {
    (
        0i128..5_000_000_000,
        0i128..5_000_000_000,
        0i128..5_000_000_000,
        0i128..5_000_000_000,
    )
        .prop_map(|(a, b, c, d)| PriceList {
            currency: "GBP".into(),
            cpu_core_hour: Price(a),
            memory_gb_hour: Price(b),
            running_hour: Price(c),
            disk_gb_hour: Price(d),
        })
}

fn usage() -> impl Strategy<Value = Usage> {
    (
        0i64..1_000_000_000_000,
        0i64..1_000_000_000_000_000,
        0i64..3_000_000_000,
        0i64..3_000_000_000_000,
    )
        .prop_map(|(c, m, r, d)| Usage {
            cpu_core_ms: c,
            mem_mib_ms: m,
            running_ms: r,
            disk_gib_ms: d,
        })
}

proptest! {
    /// Rating rounds once: the result is within half a minor unit of the exact value.
    #[test]
    fn rating_is_exact_to_half_a_minor_unit(p in prices(), u in usage()) {
        let (num, den) = p.rate_nanos_times_den(&u);
        let m = i128::from(p.rate(&u).minor());
        // |m − num/den| ≤ 1/2  ⇔  |2·m·den − 2·num| ≤ den
        prop_assert!((2 * m * den - 2 * num).abs() <= den);
    }

    /// Rating is additive up to one rounding per part.
    #[test]
    fn rating_is_additive(p in prices(), a in usage(), b in usage()) {
        let mut sum = a;
        sum.add(&b);
        let whole = p.rate(&sum).minor();
        let parts = p.rate(&a).minor() + p.rate(&b).minor();
        prop_assert!((whole - parts).abs() <= 1);
        prop_assert!(p.rate(&sum) >= p.rate(&a));
    }

    /// Splitting an interval into ticks loses at most a rounding per tick, and nothing when
    /// the figures are whole units.
    #[test]
    fn accumulation_over_ticks(cpu in 0u32..1600, mib in 0u64..65536, ticks in 1usize..200, dt in 1i64..5000) {
        let mut total = Usage::default();
        for _ in 0..ticks {
            total.add(&interval_usage(Some(f64::from(cpu)), Some(mib << 20), true, dt));
        }
        let whole = i64::try_from(ticks).unwrap() * dt;
        prop_assert_eq!(total.running_ms, whole);
        prop_assert_eq!(total.mem_mib_ms, i64::try_from(mib).unwrap() * whole);
        let exact = f64::from(cpu) * whole as f64 / 100.0;
        prop_assert!((total.cpu_core_ms as f64 - exact).abs() <= ticks as f64 * 0.5 + 1e-6);
    }

    /// An invoice's amount is the exact sum of its cost items; credits never exceed it and
    /// the balance is what remains.
    #[test]
    fn invoice_totals(p in prices(), us in proptest::collection::vec(usage(), 0..8), credits in 0i64..1_000_000) {
        let lines: Vec<Line> = us.iter().enumerate().map(|(i, u)| Line {
            kind: ResourceKind::Device,
            resource_id: format!("d{i}"),
            resource_name: format!("d{i}"),
            usage: *u,
        }).collect();
        let inv = build_invoice(InvoiceInput {
            invoice_id: "x".into(),
            invoice_number: None,
            account_id: "a".into(),
            period: "2024-05".into(),
            status: InvoiceStatus::Draft,
            prices: &p,
            lines,
            grants_in_period: vec![],
            available_credits: Money(credits),
            stack_names: Default::default(),
        });
        let items: i64 = inv.items.iter().filter(|i| i.item_type == lookout_cloud::ItemType::Cost).map(|i| i.amount.minor()).sum();
        prop_assert_eq!(inv.amount.minor(), items);
        prop_assert!(inv.credit_adj.minor() <= 0);
        prop_assert!(-inv.credit_adj.minor() <= inv.amount.minor().min(credits));
        prop_assert_eq!(inv.balance.minor(), inv.amount.minor() + inv.credit_adj.minor());
    }

    /// Decimal text survives parse → print exactly, and the JSON number reads back exactly.
    #[test]
    fn money_text_and_json_round_trip(minor in -9_000_000_000_000i64..9_000_000_000_000) {
        let m = Money(minor);
        prop_assert_eq!(Money::parse(&m.to_string()).unwrap(), m);
        let json = m.to_json().to_string();
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(Money::from_json(&back).unwrap(), m);
        prop_assert_eq!(parse_decimal(&json, 2).unwrap(), i128::from(minor));
    }
}
