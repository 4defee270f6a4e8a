#include "turnbroker/pcscf/registry.h"

#include <gtest/gtest.h>

namespace turnbroker::pcscf {
namespace {

constexpr int64_t kT0 = 1'800'000'000'000;

IssuedCredential Cred(std::string username, std::string impu, int64_t expires_at_ms) {
  IssuedCredential c;
  c.username = std::move(username);
  c.password = "pw";
  c.realm = "example.org";
  c.subscriber = std::move(impu);
  c.issued_at_ms = kT0;
  c.expires_at_ms = expires_at_ms;
  return c;
}

TEST(RegistryTest, ReusesTheCurrentCredentialWhileEnoughLifetimeIsLeft) {
  ManualClock clock(kT0);
  CredentialRegistry r(&clock);
  EXPECT_FALSE(r.Reusable("sip:a@x", 0));
  EXPECT_FALSE(r.Add(Cred("u1", "sip:a@x", kT0 + 3'600'000)));
  ASSERT_TRUE(r.Reusable("sip:a@x", 600'000));
  EXPECT_EQ(r.Reusable("sip:a@x", 600'000)->username, "u1");
  clock.Advance(3'000'001);  // 599.999 s left
  EXPECT_FALSE(r.Reusable("sip:a@x", 600'000));
  EXPECT_TRUE(r.Reusable("sip:a@x", 1'000));
  EXPECT_FALSE(r.Reusable("sip:b@x", 0));
}

TEST(RegistryTest, AddingReturnsThePreviousLiveCredentialAsRetiring) {
  ManualClock clock(kT0);
  CredentialRegistry r(&clock);
  r.Add(Cred("u1", "sip:a@x", kT0 + 3'600'000));
  auto previous = r.Add(Cred("u2", "sip:a@x", kT0 + 3'600'000));
  ASSERT_TRUE(previous);
  EXPECT_EQ(previous->username, "u1");
  EXPECT_EQ(r.Reusable("sip:a@x", 0)->username, "u2");
  // Retiring credentials are still live (the overlap) but never current.
  EXPECT_TRUE(r.Find("u1"));
  EXPECT_EQ(r.size(), 2u);
  r.Remove("u2");
  EXPECT_FALSE(r.Reusable("sip:a@x", 0)) << "u1 is retiring: never handed out again";
}

TEST(RegistryTest, RemovesBySubscriberAndByUsername) {
  ManualClock clock(kT0);
  CredentialRegistry r(&clock);
  r.Add(Cred("u1", "sip:a@x", kT0 + 1000));
  r.Add(Cred("u2", "sip:a@x", kT0 + 2000));
  r.Add(Cred("u3", "sip:b@x", kT0 + 2000));
  auto removed = r.RemoveSubscriber("sip:a@x");
  ASSERT_EQ(removed.size(), 2u);
  EXPECT_EQ(r.size(), 1u);
  EXPECT_FALSE(r.Find("u1"));
  EXPECT_TRUE(r.Remove("u3"));
  EXPECT_FALSE(r.Remove("u3"));
  EXPECT_EQ(r.size(), 0u);
}

TEST(RegistryTest, ExpiredCredentialsAreNeitherFoundNorLive) {
  ManualClock clock(kT0);
  CredentialRegistry r(&clock);
  r.Add(Cred("u1", "sip:a@x", kT0 + 1000));
  r.Add(Cred("u2", "sip:b@x", kT0 + 5000));
  clock.Advance(1000);
  EXPECT_FALSE(r.Find("u1"));
  EXPECT_FALSE(r.Remove("u1"));
  EXPECT_EQ(r.Live().size(), 1u);
  r.Add(Cred("u3", "sip:c@x", kT0 + 1500));
  clock.Advance(1000);
  EXPECT_EQ(r.RemoveExpired(), 1u);
  EXPECT_EQ(r.size(), 1u);
  EXPECT_TRUE(r.RemoveSubscriber("sip:c@x").empty());
}

TEST(RegistryTest, RemoveExpiredTakesExactlyWhatExpiredWhateverWasRemovedBefore) {
  // RemoveExpired walks an index by expiry (it runs every 2 s under the
  // lock every REGISTER takes), which every other removal must keep exact.
  ManualClock clock(kT0);
  CredentialRegistry r(&clock);
  for (int i = 0; i < 1000; ++i) {
    r.Add(Cred("u" + std::to_string(i), "sip:" + std::to_string(i % 300) + "@x",
               kT0 + 1'000 * (1 + i % 10)));
  }
  for (int i = 0; i < 1000; i += 7) r.Remove("u" + std::to_string(i));
  r.RemoveSubscriber("sip:5@x");
  r.Add(Cred("u1", "sip:1@x", kT0 + 50'000));  // the same username again, later
  const size_t left = r.size();
  size_t removed = 0;
  for (int s = 1; s <= 10; ++s) {
    size_t expect = 0;  // live now, expired a second later
    for (const IssuedCredential& c : r.Live()) expect += c.expires_at_ms <= clock.NowMs() + 1'000;
    clock.Advance(1'000);
    EXPECT_EQ(r.RemoveExpired(), expect);
    removed += expect;
  }
  EXPECT_EQ(r.size(), 1u);
  EXPECT_EQ(removed, left - 1);
  EXPECT_TRUE(r.Find("u1"));
}

TEST(RevokedUsernamesTest, KeepsEachUntilItsExpiryAndTheLatestWhenFull) {
  ManualClock clock(kT0);
  RevokedUsernames r(&clock, 2);
  EXPECT_EQ(r.Add("a", kT0 + 1'000), 0u);
  EXPECT_EQ(r.Add("b", kT0 + 3'000), 0u);
  EXPECT_EQ(r.Add("a", kT0 + 500), 0u) << "an earlier expiry never shortens one";
  EXPECT_EQ(r.Add("c", kT0 + 2'000), 1u) << "full: the one expiring first is forgotten";
  EXPECT_EQ(r.Add("d", kT0 + 100), 1u) << "full: expiring before all the others, not kept";
  EXPECT_EQ(r.Add("e", kT0), 0u) << "already expired: nothing to remember";
  using Entries = std::vector<std::pair<std::string, int64_t>>;
  EXPECT_EQ(r.Live(), (Entries{{"c", kT0 + 2'000}, {"b", kT0 + 3'000}}));
  clock.Advance(2'000);
  EXPECT_EQ(r.Live(), (Entries{{"b", kT0 + 3'000}}));
  EXPECT_EQ(r.size(), 1u);
  EXPECT_EQ(r.Add("f", kT0 + 9'000), 0u) << "room again once expired entries are dropped";
  RevokedUsernames none(&clock, 0);
  EXPECT_EQ(none.Add("a", kT0 + 9'000), 1u);
  EXPECT_EQ(none.size(), 0u);
}

}  // namespace
}  // namespace turnbroker::pcscf
