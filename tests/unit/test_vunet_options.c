/* The command line of build/vhost-user-net (vhost-user/net/options.c):
 * the contract the VMM's tests rely on (--vhost NAME=SOCKET[,client]
 * [,queues=N], --pair A,B[@LCORE], --burst, --mbufs, --mbuf-cache, --stats)
 * and every rejection with its "--flag: what" message. EAL is faked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/options.h"

static struct vn_options opts;
static char err[512];

static int parse(int argc, char **argv)
{
    memset(err, 0, sizeof(err));
    return vn_options_parse(&opts, argc, argv, err, sizeof(err));
}

#define PARSE(...)                                                         \
    ({                                                                     \
        char *a_[] = { __VA_ARGS__ };                                      \
        parse((int)(sizeof(a_) / sizeof(a_[0])), a_);                      \
    })

static void expect_error(int rc, const char *prefix)
{
    assert_int_equal(rc, -1);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("error '%s' does not start with '%s'", err, prefix);
}

/* --- fake EAL: ethdevs net_tap0 and net_ring0; lcores 0 (main), 1, 2 --- */
static bool fake_ethdev(const char *name, void *ctx)
{
    (void)ctx;
    return !strcmp(name, "net_tap0") || !strcmp(name, "net_ring0") || !strcmp(name, "0000:01:00.1");
}

static enum vn_lcore_role fake_role(unsigned lcore, void *ctx)
{
    (void)ctx;
    return lcore == 0 ? VN_LCORE_MAIN : lcore <= 2 ? VN_LCORE_WORKER : VN_LCORE_OFF;
}

static const unsigned two_workers[] = { 1, 2 };
static const struct vn_env env = { fake_ethdev, fake_role, two_workers, 2, NULL };
static struct vn_plan plan;

static int resolve(void)
{
    memset(err, 0, sizeof(err));
    return vn_plan_resolve(&opts, &env, &plan, err, sizeof(err));
}

static void guest_test_command_line(void **state)
{
    (void)state;
    assert_int_equal(PARSE("--vhost", "g0=/tmp/x/g0.sock", "--pair", "g0,net_tap0"), 0);
    assert_int_equal(opts.n_vhost, 1);
    assert_string_equal(opts.vhost[0].name, "g0");
    assert_string_equal(opts.vhost[0].socket, "/tmp/x/g0.sock");
    assert_false(opts.vhost[0].client);
    assert_int_equal(opts.vhost[0].queues, 1);
    assert_int_equal(opts.burst, VN_DEFAULT_BURST);
    assert_int_equal(opts.mbufs, VN_DEFAULT_MBUFS);
    assert_int_equal(opts.mbuf_cache, VN_DEFAULT_MBUF_CACHE);
    assert_string_equal(opts.stats_path, "");
    assert_int_equal(resolve(), 0);
    assert_int_equal(plan.n_ports, 2);
    assert_int_equal(plan.n_pairs, 1);
    assert_true(plan.port[0].is_vhost);
    assert_false(plan.port[1].is_vhost);
    assert_string_equal(plan.port[1].name, "net_tap0");
    assert_int_equal(plan.pair[0].lcore, 1);
}

static void two_guests_and_options(void **state)
{
    (void)state;
    assert_int_equal(PARSE("--vhost", "a=/tmp/x/a.sock,queues=4", "--vhost=b=/tmp/x/b.sock,client,queues=2",
                           "--pair", "a,b", "--burst=64", "--mbufs", "16383", "--mbuf-cache", "128",
                           "--stats", "/tmp/x/st.json"),
                     0);
    assert_int_equal(opts.vhost[0].queues, 4);
    assert_false(opts.vhost[0].client);
    assert_true(opts.vhost[1].client);
    assert_int_equal(opts.vhost[1].queues, 2);
    assert_string_equal(opts.vhost[1].socket, "/tmp/x/b.sock");
    assert_int_equal(opts.burst, 64);
    assert_int_equal(opts.mbufs, 16383);
    assert_int_equal(opts.mbuf_cache, 128);
    assert_string_equal(opts.stats_path, "/tmp/x/st.json");
    assert_int_equal(resolve(), 0);
    assert_int_equal(plan.port[0].queues, 4);
    assert_int_equal(plan.port[1].queues, 2);
}

static void pairs_round_robin_and_pinned(void **state)
{
    (void)state;
    assert_int_equal(PARSE("--vhost", "a=/s/a", "--vhost", "b=/s/b", "--vhost", "c=/s/c,queues=3",
                           "--pair", "a,a", "--pair", "b,net_ring0", "--pair", "c,0000:01:00.1@1"),
                     0);
    assert_int_equal(resolve(), 0);
    assert_int_equal(plan.n_pairs, 3);
    assert_int_equal(plan.pair[0].a, plan.pair[0].b); /* hairpin */
    assert_int_equal(plan.pair[0].lcore, 1);
    assert_int_equal(plan.pair[1].lcore, 2);
    assert_int_equal(plan.pair[2].lcore, 1);
    /* An ethdev takes its vhost partner's queue count. */
    assert_int_equal(plan.port[plan.pair[2].b].queues, 3);
    assert_int_equal(plan.port[plan.pair[1].b].queues, 1);
}

static void mbuf_cache_fits_pool(void **state)
{
    (void)state;
    assert_int_equal(PARSE("--vhost", "a=/s/a", "--pair", "a,a", "--mbufs", "512"), 0);
    assert_int_equal(opts.mbuf_cache, VN_DEFAULT_MBUF_CACHE);
    assert_int_equal(PARSE("--vhost", "a=/s/a", "--pair", "a,a", "--mbufs", "600", "--mbuf-cache", "400"), 0);
    expect_error(PARSE("--vhost", "a=/s/a", "--pair", "a,a", "--mbufs", "600", "--mbuf-cache", "500"),
                 "--mbuf-cache: 500 is more than 2/3 of --mbufs 600");
}

static void rejected_options(void **state)
{
    (void)state;
    char longpath[200];
    memset(longpath, 'p', sizeof(longpath));
    memcpy(longpath, "x=/", 3);
    longpath[3 + VN_SUN_PATH_MAX - 1] = 0; /* a path of exactly 108 bytes: one too many */
    expect_error(PARSE("--vhost", longpath, "--pair", "x,x"), "--vhost: x: socket path is 108 bytes");
    longpath[3 + VN_SUN_PATH_MAX - 2] = 0; /* 107: fits */
    assert_int_equal(PARSE("--vhost", longpath, "--pair", "x,x"), 0);

    expect_error(PARSE("--vhost", "a=/s/a"), "--pair: no pairs given");
    expect_error(PARSE(), "--pair: no pairs given");
    expect_error(PARSE("--vhost", "a=/s/a", "--vhost", "a=/s/b", "--pair", "a,a"),
                 "--vhost: duplicate port name 'a'");
    expect_error(PARSE("--vhost", "a=/s/a", "--vhost", "b=/s/a", "--pair", "a,b"),
                 "--vhost: b: socket /s/a is already used by port a");
    expect_error(PARSE("--vhost", "a=/s/a,queues=0", "--pair", "a,a"), "--vhost: a: queues must be 1..128");
    expect_error(PARSE("--vhost", "a=/s/a,queues=129", "--pair", "a,a"), "--vhost: a: queues must be 1..128");
    expect_error(PARSE("--vhost", "a=/s/a,queues=-1", "--pair", "a,a"), "--vhost: a: queues must be");
    expect_error(PARSE("--vhost", "a=/s/a,queues=1x", "--pair", "a,a"), "--vhost: a: queues must be");
    expect_error(PARSE("--vhost", "a=/s/a,queues=2,queues=3", "--pair", "a,a"), "--vhost: a: queues given twice");
    expect_error(PARSE("--vhost", "a=/s/a,server", "--pair", "a,a"), "--vhost: a: unknown option 'server'");
    expect_error(PARSE("--vhost", "a=", "--pair", "a,a"), "--vhost: a: empty socket path");
    expect_error(PARSE("--vhost", "/s/a", "--pair", "a,a"), "--vhost: '/s/a' is not NAME=SOCKET");
    expect_error(PARSE("--vhost", "a b=/s/a", "--pair", "a,a"), "--vhost: port name 'a b'");
    expect_error(PARSE("--vhost", "=/s/a", "--pair", "a,a"), "--vhost: port name ''");
    expect_error(PARSE("--vhost"), "--vhost: needs a value");
    expect_error(PARSE("--pair", "a"), "--pair: 'a' is not A,B[@LCORE]");
    expect_error(PARSE("--pair", "a,"), "--pair: 'a,': port names");
    expect_error(PARSE("--pair", "a,b@"), "--pair: 'a,b@': LCORE must be a number");
    expect_error(PARSE("--pair", "a,b@x"), "--pair: 'a,b@x': LCORE must be a number");
    expect_error(PARSE("--pair", "a,b,c"), "--pair: 'a,b,c': port names");
    expect_error(PARSE("--burst", "0", "--pair", "a,a"), "--burst: must be 1..512");
    expect_error(PARSE("--burst", "513", "--pair", "a,a"), "--burst: must be 1..512");
    expect_error(PARSE("--mbufs", "100", "--pair", "a,a"), "--mbufs: must be 512..");
    expect_error(PARSE("--mbuf-cache", "513", "--pair", "a,a"), "--mbuf-cache: must be 0..512");
    expect_error(PARSE("--stats", "", "--pair", "a,a"), "--stats: empty file name");
    expect_error(PARSE("--pair", "a,a", "--frob"), "--frob: unknown option");
    expect_error(PARSE("--pairs", "a,a"), "--pairs: unknown option");
}

static void rejected_plans(void **state)
{
    (void)state;
    assert_int_equal(PARSE("--vhost", "a=/s/a", "--pair", "a,nope"), 0);
    expect_error(resolve(), "--pair: unknown port 'nope'");
    assert_int_equal(PARSE("--vhost", "a=/s/a", "--pair", "a,a@3"), 0);
    expect_error(resolve(), "--pair: a,a@3: lcore 3 is not enabled in EAL");
    assert_int_equal(PARSE("--vhost", "a=/s/a", "--pair", "a,a@0"), 0);
    expect_error(resolve(), "--pair: a,a@0: lcore 0 is EAL's main lcore");
    assert_int_equal(PARSE("--vhost", "net_tap0=/s/a", "--pair", "net_tap0,net_tap0"), 0);
    expect_error(resolve(), "--vhost: name 'net_tap0' is also a DPDK ethdev's name");
    assert_int_equal(PARSE("--vhost", "a=/s/a", "--vhost", "b=/s/b", "--pair", "a,net_tap0", "--pair",
                           "b,net_tap0"),
                     0);
    expect_error(resolve(), "--pair: port 'net_tap0' is already in another pair");
    assert_int_equal(PARSE("--vhost", "a=/s/a", "--pair", "a,a", "--pair", "a,net_tap0"), 0);
    expect_error(resolve(), "--pair: port 'a' is already in another pair");

    static const struct vn_env no_workers = { fake_ethdev, fake_role, NULL, 0, NULL };
    assert_int_equal(PARSE("--vhost", "a=/s/a", "--pair", "a,a"), 0);
    memset(err, 0, sizeof(err));
    expect_error(vn_plan_resolve(&opts, &no_workers, &plan, err, sizeof(err)), "--pair: no worker lcore");
}

static void too_many(void **state)
{
    (void)state;
    char *argv[2 * (VN_MAX_VHOST + 1) + 2];
    char bufs[VN_MAX_VHOST + 1][32];
    int argc = 0;
    for (int i = 0; i <= VN_MAX_VHOST; i++) {
        snprintf(bufs[i], sizeof(bufs[i]), "p%d=/s/%d", i, i);
        argv[argc++] = "--vhost";
        argv[argc++] = bufs[i];
    }
    expect_error(parse(argc, argv), "--vhost: more than 32 vhost ports");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(guest_test_command_line),
        cmocka_unit_test(two_guests_and_options),
        cmocka_unit_test(pairs_round_robin_and_pinned),
        cmocka_unit_test(mbuf_cache_fits_pool),
        cmocka_unit_test(rejected_options),
        cmocka_unit_test(rejected_plans),
        cmocka_unit_test(too_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
