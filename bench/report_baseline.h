/*
 * report_baseline.h - the single-mutex TLS result table (bench/report_baseline.c),
 * the baseline bench_report.c measures policy/sts_report.c against. The
 * functions behave as their sts_report_* namesakes did before the store.
 */
#ifndef STS_REPORT_BASELINE_H
#define STS_REPORT_BASELINE_H

#include "policy/sts_report.h"

struct base_report;

struct base_report *base_report_new(int64_t now);
void base_report_free(struct base_report *r);
int base_report_success(struct base_report *r, const char *domain, enum sts_policy_type type,
                        const char *policy_id, enum sts_mode mode, const char *mx_host,
                        int64_t now);
int base_report_failure(struct base_report *r, const char *domain, enum sts_policy_type type,
                        const char *policy_id, enum sts_mode mode, enum sts_result result,
                        const char *mx_host, const char *dest_ip, int64_t now);
size_t base_report_foreach(struct base_report *r, sts_report_cb *cb, void *arg);
size_t base_report_foreach_yesterday(struct base_report *r, sts_report_cb *cb, void *arg);
int base_report_rollover(struct base_report *r, int64_t now);
int64_t base_report_day(struct base_report *r);
int64_t base_report_day_of(int64_t t);

#endif
