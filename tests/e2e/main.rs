//! End-to-end tests: the suite served on free ports, called through the generated clients.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod approvals;
mod arbitrary;
mod audit;
mod auth;
mod authorize;
mod cases;
mod collections;
mod credit_notes;
mod data_points;
mod demo;
mod dunning;
mod freshness;
mod grade_chains;
mod health;
mod import_csv;
mod intake;
mod investigations;
mod limits;
mod loss;
mod policy;
mod propose;
mod rating;
mod ratings;
mod readiness;
mod receivables;
mod reconcile;
mod referral_chains;
mod security;
mod terms;

/// Runs each scenario `fn(&TestSuite)` twice: on the embedded default and on PostgreSQL +
/// Redis, each in a fresh suite.
macro_rules! on_both_backends {
    ($module:ident: $($scenario:ident),* $(,)?) => {
        mod $module {
            mod embedded {
                $(
                    #[tokio::test]
                    async fn $scenario() {
                        let suite = credit_e2e_tests::TestSuite::embedded().await;
                        crate::$module::$scenario(&suite).await;
                        suite.stop().await;
                    }
                )*
            }
            mod postgres {
                $(
                    #[tokio::test]
                    async fn $scenario() {
                        let suite = credit_e2e_tests::TestSuite::production(credit_suite::ServiceSelection::all()).await;
                        crate::$module::$scenario(&suite).await;
                        suite.stop().await;
                    }
                )*
            }
        }
    };
}

mod both {
    on_both_backends!(intake:
        registers_and_refuses_duplicates,
        request_ids_are_the_callers_own,
        bad_input_is_refused_with_field_violations_and_nothing_written,
        national_ids_are_masked_for_roles_that_may_not_see_them,
        updates_follow_the_mask_and_are_audited,
        lists_filter_and_page_in_a_stable_order,
        lifecycle_follows_the_allowed_transitions,
        groups_hold_each_customer_at_most_once,
        statements_are_checked_versioned_and_give_ratios,
        bureau_reports_and_trade_references_are_listed_on_the_customer,
        credit_file_lists_come_newest_first,
        import_reports_each_row_and_creates_nothing_twice,
        personal_data_never_reaches_the_logs,
        a_change_that_keeps_the_last_four_characters_is_saved,
        an_import_over_its_caps_keeps_what_it_settled_and_resumes,
    );
    on_both_backends!(import_csv: ten_thousand_rows_import_once_with_a_per_row_summary);
    on_both_backends!(freshness:
        a_stale_statement_and_an_expired_document_are_flagged_reviewed_and_hold_approval,
    );
    on_both_backends!(investigations:
        an_investigation_is_worked_item_by_item_and_gates_the_first_limit,
    );
    on_both_backends!(data_points:
        a_scorecard_built_on_data_points_scores_imported_customers_as_the_tool_did,
        data_point_values_are_checked_kept_with_history_and_guarded_by_role,
    );
    on_both_backends!(limits:
        limits_need_a_second_person_with_enough_authority,
        the_portfolio_cap_bounds_the_total_of_customer_limits,
        concurrent_approvals_never_pass_the_portfolio_cap_together,
        limit_requests_are_checked_before_anything_is_written,
        group_limits_follow_memberships_made_in_intake,
    );
    on_both_backends!(approvals:
        a_large_limit_walks_finance_risk_and_the_general_manager_and_is_filed_with_the_board,
        nobody_decides_two_steps_of_one_chain_nor_their_own_request,
        a_returned_request_goes_back_to_its_maker_and_a_rejection_ends_it,
        a_small_limit_is_still_one_credit_managers_decision,
        a_matrix_change_needs_a_second_person_and_keeps_its_history,
        only_people_who_run_credit_propose_a_matrix,
        a_step_left_waiting_past_its_deadline_is_escalated_to_the_credit_department,
        a_request_left_waiting_past_the_policy_expiry_is_withdrawn,
    );
    on_both_backends!(referral_chains:
        an_order_beyond_the_tolerance_is_verified_by_finance_and_released_by_the_general_manager_on_a_deposit,
        a_release_on_a_partial_quantity_holds_only_that_part,
        a_referral_is_released_by_the_system_once_a_payment_clears_it,
    );
    on_both_backends!(grade_chains:
        an_override_beyond_two_notches_goes_to_the_general_manager,
        a_companys_override_chain_takes_two_people_never_one_twice,
        a_new_grade_waits_for_the_general_manager_when_the_policy_asks,
    );
    on_both_backends!(policy:
        a_policy_change_is_proposed_and_published_by_a_second_person,
        a_policy_change_takes_effect_on_its_date_and_a_stale_one_is_not_published,
        credit_terms_default_by_grade_and_cap_each_order,
        a_required_rating_that_is_missing_or_past_review_refers_orders,
        small_increases_for_good_grades_are_approved_by_a_policy_rule,
        a_five_tier_customer_gets_its_tiers_terms,
        a_downgrade_drafts_a_limit_cut_and_every_grade_change_a_review,
    );
    on_both_backends!(propose:
        without_a_rating_no_limit_is_proposed,
        a_rated_customer_without_a_statement_gets_the_grade_cap,
        the_equity_share_binds_when_equity_is_small,
        the_revenue_multiple_binds_when_revenue_is_small,
        negative_equity_takes_no_part_in_the_proposal,
        only_makers_may_ask_for_a_proposal,
    );
    on_both_backends!(receivables:
        receivable_events_move_exposure_once_each,
        overdue_beyond_the_grade_tolerance_blocks_until_paid,
        receivables_without_a_rate_wait_and_block_credit_until_one_is_set,
    );
    on_both_backends!(security:
        a_deposit_and_insurance_raise_what_authorize_approves_when_the_policy_says_so,
        a_guarantee_is_the_guarantors_contingent_exposure_until_it_expires,
        securities_are_checked_released_and_revalued_with_four_eyes,
        quote_credit_price_reproduces_the_documents_cost_of_funds_by_hand,
    );
    on_both_backends!(terms:
        a_two_ten_net_thirty_invoice_paid_on_day_eight_settles_with_the_discount,
        overdue_interest_accrues_by_the_day_at_the_policy_rate,
    );
    on_both_backends!(authorize:
        authorize_follows_the_limit_and_its_tolerance_band,
        authorize_is_idempotent_on_its_key,
        orders_in_another_currency_are_converted_with_the_fx_table,
        holds_are_read_one_by_one_and_listed_newest_first,
        capture_and_release_move_exposure_between_holds_and_receivables,
        concurrent_callers_never_exceed_the_limits,
        referrals_are_released_or_rejected_by_enough_authority,
        credit_blocks_refer_every_order_until_cleared,
        expired_holds_are_released_by_the_sweeper,
    );
    on_both_backends!(rating:
        the_shipped_models_are_listed,
        publishing_adds_a_version_and_keeps_the_first,
        a_retry_replays_and_other_content_under_its_key_is_refused,
        invalid_models_are_refused_at_the_exact_field_and_nothing_is_written,
        an_applicability_conflict_is_a_failed_precondition,
        only_an_admin_publishes_models,
        an_imported_scorecard_table_scores_as_computed_by_hand,
        the_same_snapshot_scores_the_same_every_time,
        the_enterprise_default_tells_a_strong_profile_from_a_weak_one,
        a_model_change_can_be_rejected_or_go_stale_and_the_history_keeps_each,
    );
    on_both_backends!(ratings:
        a_customer_is_rated_as_computed_by_hand,
        missing_inputs_take_the_missing_value_points,
        an_override_needs_a_second_person_with_enough_rank,
        due_reviews_are_found_and_rerated,
        a_new_statement_rerates_and_limits_sees_the_new_grade,
        overdue_past_thirty_days_rerates_once,
        payment_behaviour_from_collections_is_scored,
    );
    on_both_backends!(collections:
        aging_as_of_a_past_date_matches_a_hand_computed_table,
        an_overpayment_is_kept_and_applied_to_the_next_invoice,
        bad_or_repeated_postings_are_refused_and_write_nothing,
        overdue_past_tolerance_refers_orders_until_paid,
        an_invoice_without_a_due_date_takes_the_customers_terms_from_limits,
        two_overdue_detections_at_once_announce_a_change_once,
        concurrent_payments_never_allocate_the_same_open_amount,
        running_balances_and_todays_aging_follow_every_change,
    );
    on_both_backends!(dunning:
        a_dunning_run_twice_creates_each_action_once,
        a_run_id_is_the_callers_own,
        dunning_policies_are_checked_when_published,
        a_promise_pauses_dunning_and_a_broken_one_escalates,
        a_dunning_policy_change_needs_a_second_person_and_keeps_its_history,
    );
    on_both_backends!(cases:
        a_promise_kept_by_a_payment_is_kept,
        a_promise_not_kept_by_its_date_is_broken_the_day_after_and_escalates,
        the_worklist_ranks_cases_by_expected_loss_with_every_component,
        contacts_are_checked_and_logged_once_per_request_id,
        disputes_leave_automatic_allocation_and_valid_ones_are_credited,
        the_worklist_ranks_other_currencies_at_the_fx_rate_of_limits,
        a_dispute_credit_note_number_in_use_is_refused_and_leaves_it_open,
    );
    on_both_backends!(loss:
        provisions_of_a_portfolio_match_hand_computed_figures,
        a_write_off_needs_a_second_person_with_enough_authority,
        a_large_write_off_is_verified_by_finance_approved_by_the_general_manager_and_filed_with_the_board,
        kpis_of_a_period_match_hand_computed_figures,
    );
    on_both_backends!(audit: audit_verify_finds_an_edited_or_deleted_row);
    on_both_backends!(credit_notes:
        credit_notes_need_authority_and_above_the_threshold_a_second_person,
        a_valid_dispute_above_the_threshold_waits_for_a_second_person,
    );
    on_both_backends!(demo: the_order_to_cash_story_runs_with_four_eyes_and_twice);
    on_both_backends!(reconcile:
        damaged_exposure_is_reported_exactly_then_repaired,
        cold_customers_are_not_differences,
        only_an_admin_may_reconcile,
        cancelled_authorizations_leave_no_reservation_behind,
        bad_input_is_refused_with_field_violations,
    );
}
