/* test_vublk_poll.c: the adaptive busy-poll window and the interrupt
 * coalescing rule of the vhost-user-blk queue thread (queue.c, compiled in:
 * it is not part of libvmm). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../vhost-user/blk/request.c"
#include "../../vhost-user/blk/queue.c"

static void test_window_shrinks_when_spinning_misses(void **state)
{
    (void)state;
    struct poll_window w;
    poll_window_init(&w, 50000);
    assert_int_equal(w.ns, 50000);
    poll_window_missed(&w);
    assert_int_equal(w.ns, 25000);
    for (int i = 0; i < 4; i++)
        poll_window_missed(&w);
    assert_int_equal(w.ns, 1562);
    poll_window_missed(&w);            /* 781 ns: below the floor, sleep at once */
    assert_int_equal(w.ns, 0);
    poll_window_missed(&w);
    assert_int_equal(w.ns, 0);
    poll_window_gap(&w, 60000);        /* longer than --poll-us: spinning would not have helped */
    assert_int_equal(w.ns, 0);
}

static void test_window_follows_short_gaps(void **state)
{
    (void)state;
    struct poll_window w;
    poll_window_init(&w, 50000);
    for (int i = 0; i < 10; i++)
        poll_window_missed(&w);
    assert_int_equal(w.ns, 0);
    poll_window_gap(&w, 3000);         /* work came back after 3 us: spin twice that */
    assert_int_equal(w.ns, 6000);
    poll_window_gap(&w, 1000);         /* a shorter gap does not shrink it */
    assert_int_equal(w.ns, 6000);
    poll_window_gap(&w, 40000);        /* twice 40 us is capped at --poll-us */
    assert_int_equal(w.ns, 50000);

    poll_window_init(&w, 50000);
    for (int i = 0; i < 10; i++)
        poll_window_missed(&w);
    poll_window_gap(&w, 100);          /* tiny gaps still get the 1 us floor */
    assert_int_equal(w.ns, POLL_WINDOW_MIN_NS);
}

static void test_poll_us_zero_never_spins(void **state)
{
    (void)state;
    struct poll_window w;
    poll_window_init(&w, 0);
    assert_int_equal(w.ns, 0);
    poll_window_gap(&w, 0);
    poll_window_gap(&w, 500);
    assert_int_equal(w.ns, 0);
}

static void test_coalescing_waits_for_the_drivers_depth(void **state)
{
    (void)state;
    struct qctx x = { 0 };
    const uint64_t cap = 50000;
    x.dirty = true;

    /* depth 1: the one request is here, nothing is held */
    x.in_hands = 1;
    x.dirty_since = 1000;
    assert_false(hold_completions(&x, cap, 1000));
    assert_int_equal(x.peak, 1);

    /* the driver had 32 out; after publishing, its next burst arrives: 5 of 32 here */
    x.in_hands = 32;
    assert_false(hold_completions(&x, cap, 2000));
    assert_int_equal(x.peak, 32);
    x.in_hands = 5;
    x.dirty_since = 10000;
    assert_true(hold_completions(&x, cap, 20000));
    x.in_hands = 32;                                   /* all of them: publish */
    assert_false(hold_completions(&x, cap, 30000));

    /* the burst stops at 12 (the driver went down to depth 12): the cap
     * ends the hold and the peak follows, so the next 12 are not held */
    x.in_hands = 12;
    x.dirty_since = 100000;
    assert_true(hold_completions(&x, cap, 149999));
    assert_false(hold_completions(&x, cap, 150000));
    assert_int_equal(x.peak, 12);
    assert_false(hold_completions(&x, cap, 150001));

    /* --coalesce-us 0: never */
    x.in_hands = 1;
    x.peak = 32;
    assert_false(hold_completions(&x, 0, 100000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_shrinks_when_spinning_misses),
        cmocka_unit_test(test_window_follows_short_gaps),
        cmocka_unit_test(test_poll_us_zero_never_spins),
        cmocka_unit_test(test_coalescing_waits_for_the_drivers_depth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
