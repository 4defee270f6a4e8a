// A publisher's revocation is scoped to its own issuer inside the commit
// group too (docs/security.md, "A publisher is bound to its eP-CSCF"): the
// service's check is made against the committed state before the request
// is queued, so a credential of another issuer that the same group makes
// live first must not be swept up by a selector that matches it.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "store_fixture.h"
#include "turnbroker/broker/planner.h"
#include "turnbroker/broker/state.h"

namespace turnbroker::broker::testing {
namespace {

// 200,000 live credentials u0..u199999 of issuer pcscf-big, u<i> in
// realm_of(i), at revisions 1..200,000.
std::vector<Change> PcscfBigCredentials(const std::function<std::string(int)>& realm_of) {
  std::vector<Change> changes;
  for (int i = 0; i < 200'000; ++i) {
    Revision revision = static_cast<Revision>(i + 1);
    changes.push_back(
        Change{revision,
               Record::Create(MakeCredential("u" + std::to_string(i), kStart + 3'600'000,
                                             realm_of(i), "", "pcscf-big"),
                              revision, kStart),
               nullptr, nullptr});
  }
  return changes;
}

TEST(HostileRevokeScopeTest, AScopedRevocationSkipsAnotherIssuersCredentialOfTheSameGroup) {
  ManualClock clock(kStart);
  CredentialState state(StateOptions{}, &clock);
  GroupPlanner planner(state, CredentialLimits{}, 10'000);
  const std::string subscriber = "sip:alice@ims.example.org";
  // pcscf-2's REGISTER and pcscf-1's revocation of the same subscriber land
  // in one group, pcscf-2's first.
  v1::PublishRequest publish;
  *publish.add_credentials() =
      MakeCredential("b1", kStart + 3'600'000, "ims.example.org", subscriber, "pcscf-2");
  ASSERT_TRUE(planner.Publish(publish).ok());
  v1::RevokeRequest revoke;
  revoke.mutable_selector()->set_subscriber(subscriber);
  auto r = planner.Revoke(revoke, "pcscf-1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->revoked(), 0u) << "pcscf-2's credential is not pcscf-1's to revoke";
  ASSERT_EQ(planner.changes().size(), 1u) << "the put only: nothing of pcscf-1's to record";

  // Unscoped (an operator): everything the selector matches.
  auto all = planner.Revoke(revoke, "");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->revoked(), 1u);
}

TEST(HostileRevokeScopeTest, AScopedRevocationOfAUsernameLeavesNoTombstoneForAnotherIssuer) {
  ManualClock clock(kStart);
  CredentialState state(StateOptions{}, &clock);
  GroupPlanner planner(state, CredentialLimits{}, 10'000);
  v1::PublishRequest publish;
  *publish.add_credentials() =
      MakeCredential("u1", kStart + 3'600'000, "ims.example.org", "", "pcscf-2");
  ASSERT_TRUE(planner.Publish(publish).ok());
  v1::RevokeRequest revoke;
  revoke.mutable_selector()->mutable_username()->set_realm("ims.example.org");
  revoke.mutable_selector()->mutable_username()->set_username("u1");
  auto r = planner.Revoke(revoke, "pcscf-1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->revoked(), 0u);
  EXPECT_EQ(planner.changes().size(), 1u);
  // pcscf-2 may still re-publish it in the same group (no tombstone).
  auto again = planner.Publish(publish);
  EXPECT_TRUE(again.ok()) << again.status();

  // In every realm: a TURN sync would apply the selector to pcscf-2's too,
  // so the scoped revocation is refused rather than half applied.
  revoke.mutable_selector()->mutable_username()->set_realm("");
  auto every = planner.Revoke(revoke, "pcscf-1");
  EXPECT_EQ(every.status().code(), absl::StatusCode::kPermissionDenied) << every.status();
  EXPECT_EQ(planner.changes().size(), 1u);
}

// Revoke-by-issuer is a publisher's to call (its own issuer) at its revoke
// rate: what it costs on the commit thread must grow with that issuer's
// credentials, not with everyone's. 1,000 revocations of an issuer with
// nothing live, beside 200,000 credentials of another, took 2-5 ms each
// with a scan of the live set (seconds in all, every publish waiting).
TEST(HostileRevokeScopeTest, MatchingAnIssuerCostsItsOwnCredentialsNotTheLiveSet) {
  ManualClock clock(kStart);
  CredentialState state(StateOptions{}, &clock);
  state.Apply(PcscfBigCredentials([](int) { return std::string("ims.example.org"); }));
  v1::Selector small;
  small.set_issuer("pcscf-small");
  int64_t start = MonotonicMicros();
  for (int i = 0; i < 1'000; ++i) ASSERT_TRUE(state.Matching(small).empty());
  int64_t micros = MonotonicMicros() - start;
  EXPECT_LT(micros, 200'000) << "1,000 matches of an issuer with nothing live took " << micros
                             << " us";
  v1::Selector big;
  big.set_issuer("pcscf-big");
  EXPECT_EQ(state.Matching(big).size(), 200'000u);
}

// A username "in every realm" (Get, Revoke with an empty realm) must not
// cost a walk of every realm: realms are the publishers' to choose. With
// 200,000 realms, each lookup took about 30 ms, and 500 revocations of a
// publisher's own usernames held another publisher's publish 27 s (the
// planner repeats the lookup on the commit thread).
TEST(HostileRevokeScopeTest, AUsernameInEveryRealmCostsItsMatchesNotTheRealms) {
  ManualClock clock(kStart);
  CredentialState state(StateOptions{}, &clock);
  std::vector<Change> changes =
      PcscfBigCredentials([](int i) { return "realm-" + std::to_string(i) + ".example"; });
  // The same username in two realms: both found, the first in realm order.
  v1::Credential twin = MakeCredential("twin", kStart + 3'600'000, "b.example", "", "pcscf-big");
  changes.push_back(Change{200'001, Record::Create(twin, 200'001, kStart), nullptr, nullptr});
  twin.set_realm("a.example");
  changes.push_back(Change{200'002, Record::Create(twin, 200'002, kStart), nullptr, nullptr});
  state.Apply(changes);

  v1::Selector nobody;
  nobody.mutable_username()->set_username("nobody");
  int64_t start = MonotonicMicros();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(state.Matching(nobody).empty());
    ASSERT_FALSE(state.FindInAnyRealm("nobody"));
  }
  int64_t micros = MonotonicMicros() - start;
  EXPECT_LT(micros, 200'000) << "100 lookups of a username in every realm took " << micros << " us";
  v1::Selector twins;
  twins.mutable_username()->set_username("twin");
  EXPECT_EQ(state.Matching(twins).size(), 2u);
  RecordRef first = state.FindInAnyRealm("twin");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->realm(), "a.example");
  EXPECT_EQ(state.FindInAnyRealm("u7")->realm(), "realm-7.example");
}

}  // namespace
}  // namespace turnbroker::broker::testing
