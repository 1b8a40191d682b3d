//! Building invoices from rated usage and credits: pure, so the arithmetic is tested alone.
//!
//! An invoice covers one calendar month (UTC). `amount` is the sum of its cost items (one per
//! rack, one for the devices outside racks); credits pay for it up to what is available: `credit_adj` is minus the
//! credits used and `balance = amount + credit_adj` is what remains due. Credits granted in
//! the month appear as positive `credits` items, credits used as a negative one.

use crate::metering::{PriceList, ResourceKind, Usage};
use crate::model::{Invoice, InvoiceItem, InvoiceStatus, ItemType, UsageSummary};
use crate::money::Money;

/// One usage line of a month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub kind: ResourceKind,
    pub resource_id: String,
    pub resource_name: String,
    pub usage: Usage,
}

/// A credit grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub amount: Money,
    /// `YYYY-MM-DD`.
    pub date: String,
}

/// First and last day of a `YYYY-MM` period, as `YYYY-MM-DD`.
pub fn period_bounds(period: &str) -> (String, String) {
    let (y, m) = period.split_once('-').unwrap_or(("1970", "01"));
    let year: i32 = y.parse().unwrap_or(1970);
    let month = m
        .parse::<u8>()
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .unwrap_or(time::Month::January);
    let last = month.length(year);
    (
        format!("{year:04}-{:02}-01", u8::from(month)),
        format!("{year:04}-{:02}-{last:02}", u8::from(month)),
    )
}

/// Everything an invoice is built from.
#[derive(Debug, Clone)]
pub struct InvoiceInput<'a> {
    pub invoice_id: String,
    pub invoice_number: Option<i64>,
    pub account_id: String,
    pub period: String,
    pub status: InvoiceStatus,
    pub prices: &'a PriceList,
    pub lines: Vec<Line>,
    pub grants_in_period: Vec<Grant>,
    /// Credits that may pay for this invoice (never negative here).
    pub available_credits: Money,
    /// Rack (stack) id → name, from the `openstack_stack_name` tags of the team's orders;
    /// a rack without one keeps the name its usage line carries.
    pub stack_names: std::collections::BTreeMap<String, String>,
}

/// The stack id of the cost line that gathers a team's devices outside any rack. Concertim's
/// `Invoice::CostItem` requires a stack id and name on every cost item
/// (concertim-ct-visualisation-app `app/models/invoice/cost_item.rb`); no rack has this id, so
/// the UI finds no rack for it and shows the line by its name.
pub const UNRACKED_STACK_ID: &str = "devices-outside-racks";
/// The name of that line.
pub const UNRACKED_STACK_NAME: &str = "Devices outside a rack";

/// Builds an invoice: one cost item per rack (a Heat stack on OpenStack, a compose project
/// or `lookout.rack` locally) carrying the stack's id and name as the UI reads them, and one
/// item for all devices outside a rack. Each cost item is rated and rounded once; the total
/// is the exact sum of items.
pub fn build_invoice(input: InvoiceInput<'_>) -> Invoice {
    let (start, end) = period_bounds(&input.period);
    let currency = input.prices.currency.clone();
    let mut items = Vec::new();
    let mut amount = Money::ZERO;
    let mut racks: Vec<&Line> = Vec::new();
    let mut loose = Usage::default();
    let mut loose_ids: Vec<String> = Vec::new();
    for l in &input.lines {
        if l.kind == ResourceKind::Rack {
            racks.push(l);
        } else {
            loose.add(&l.usage);
            loose_ids.push(l.resource_id.clone());
        }
    }
    racks.sort_by(|a, b| a.resource_id.cmp(&b.resource_id));
    loose_ids.sort();
    let mut push = |id: &str, name: &str, usage: &Usage, device_ids: Option<Vec<String>>| {
        let cost = input.prices.rate(usage);
        amount = amount.saturating_add(cost);
        let rack = device_ids.is_none();
        items.push(InvoiceItem {
            item_id: if rack {
                format!("cost-rack-{id}")
            } else {
                "cost-devices".to_string()
            },
            item_type: ItemType::Cost,
            billing_item_type: "USAGE".into(),
            description: format!("Rack costs: {name}"),
            amount: cost,
            currency: currency.clone(),
            start_date: start.clone(),
            end_date: end.clone(),
            resource_kind: Some(if rack { "rack" } else { "device" }.into()),
            rack_id: rack.then(|| id.to_string()),
            device_id: None,
            device_ids,
            openstack_stack_id: Some(id.to_string()),
            openstack_stack_name: Some(name.to_string()),
            usage: Some(UsageSummary::from(usage)),
        });
    };
    for l in racks {
        let name = input
            .stack_names
            .get(&l.resource_id)
            .map(String::as_str)
            .unwrap_or(&l.resource_name);
        push(&l.resource_id, name, &l.usage, None);
    }
    if !loose_ids.is_empty() {
        push(
            UNRACKED_STACK_ID,
            UNRACKED_STACK_NAME,
            &loose,
            Some(loose_ids),
        );
    }
    for g in &input.grants_in_period {
        items.push(credits_item(
            format!("credits-{}", g.id),
            "Credits deposited",
            g.amount,
            &currency,
            &g.date,
        ));
    }
    let available = input.available_credits.max(Money::ZERO);
    let used = if amount > Money::ZERO {
        available.min(amount)
    } else {
        Money::ZERO
    };
    if used > Money::ZERO {
        items.push(credits_item(
            format!("credits-spent-{}", input.period),
            "Credits spent",
            -used,
            &currency,
            &end,
        ));
    }
    Invoice {
        invoice_id: input.invoice_id,
        account_id: input.account_id,
        invoice_number: input.invoice_number,
        invoice_date: end.clone(),
        target_date: end,
        amount,
        credit_adj: -used,
        refund_adj: Money::ZERO,
        balance: amount.saturating_sub(used),
        currency,
        draft: input.status == InvoiceStatus::Draft,
        status: input.status,
        items,
    }
}

fn credits_item(id: String, what: &str, amount: Money, currency: &str, date: &str) -> InvoiceItem {
    InvoiceItem {
        item_id: id,
        item_type: ItemType::Credits,
        billing_item_type: "CREDIT_ADJ".into(),
        description: what.into(),
        amount,
        currency: currency.into(),
        start_date: date.into(),
        end_date: date.into(),
        resource_kind: None,
        rack_id: None,
        device_id: None,
        device_ids: None,
        openstack_stack_id: None,
        openstack_stack_name: None,
        usage: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(
            period_bounds("2024-02"),
            ("2024-02-01".into(), "2024-02-29".into())
        );
        assert_eq!(
            period_bounds("2023-12"),
            ("2023-12-01".into(), "2023-12-31".into())
        );
    }
}
