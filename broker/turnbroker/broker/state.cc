#include "turnbroker/broker/state.h"

#include <algorithm>
#include <tuple>

#include "absl/hash/hash.h"

namespace turnbroker::broker {
namespace {

// How often the tombstone table is swept for expired entries.
constexpr int64_t kTombstoneSweepIntervalMs = 10'000;

}  // namespace

size_t CredentialState::KeyHash::operator()(const Key& k) const {
  return absl::Hash<std::tuple<std::string_view, std::string_view>>{}(
      std::make_tuple(k.realm, k.username));
}

uint64_t CredentialState::SubscriberHash(std::string_view subscriber) {
  return absl::Hash<std::string_view>{}(subscriber);
}

uint64_t CredentialState::TombstoneKey(std::string_view realm, std::string_view username) {
  return absl::Hash<std::tuple<std::string_view, std::string_view>>{}(
      std::make_tuple(realm, username));
}

std::shared_ptr<const SecretChange> MakeSecretChange(v1::SharedSecret secret, bool retired,
                                                     Revision revision, Revision staged_revision) {
  auto change = std::make_shared<SecretChange>();
  change->staged_revision = staged_revision;
  v1::Event event;
  event.set_revision(revision);
  if (retired) {
    event.mutable_secret_retired()->set_realm(secret.realm());
    event.mutable_secret_retired()->set_id(secret.id());
    event.SerializeToString(&change->event_wire);
    change->redacted_wire = change->event_wire;
  } else {
    *event.mutable_secret() = secret;
    event.SerializeToString(&change->event_wire);
    event.mutable_secret()->clear_secret();
    event.SerializeToString(&change->redacted_wire);
  }
  change->secret = std::move(secret);
  change->retired = retired;
  return change;
}

CredentialState::CredentialState(StateOptions options, const Clock* clock)
    : options_(options), clock_(clock) {}

CredentialState::~CredentialState() = default;

void CredentialState::Reset(std::string epoch, Revision head) {
  {
    std::lock_guard<std::mutex> lock(epoch_mu_);
    epoch_ = std::move(epoch);
  }
  head_.store(head, std::memory_order_release);
}

std::string CredentialState::epoch() const {
  std::lock_guard<std::mutex> lock(epoch_mu_);
  return epoch_;
}

void CredentialState::Replace(std::string epoch, Revision head, std::vector<RecordRef> live,
                              const std::vector<Tombstone>& tombstones,
                              std::vector<SecretEntryRef> secrets,
                              const std::vector<Change>& replay) {
  int64_t now = clock_->NowMs();
  {
    std::unique_lock lock(mu_);
    live_.clear();
    by_revision_.clear();
    by_subscriber_.clear();
    by_issuer_.clear();
    by_username_.clear();
    by_expiry_.clear();
    tombstones_.clear();
    revocation_deaths_.clear();
    secrets_.clear();
    history_.clear();
    dead_.clear();
    for (SecretEntryRef& e : secrets) {
      const v1::SharedSecret& s = e->secret();
      if (s.expires_at_ms() != 0 && s.expires_at_ms() <= now) continue;
      secrets_[{s.realm(), s.id()}] = std::move(e);
    }
    for (RecordRef& r : live) {
      if (!Live(*r, now)) continue;
      auto it = live_.find(Key{r->realm(), r->username()});
      if (it != live_.end()) {
        if ((*it)->revision() >= r->revision()) continue;
        RemoveLocked(it->get());
      }
      InsertLocked(r);
    }
    dead_.clear();
    for (const auto& [ref, until] : tombstones) {
      if (until > now) AddTombstoneLocked(ref.first, ref.second, until);
    }
    {
      std::lock_guard<std::mutex> elock(epoch_mu_);
      epoch_ = std::move(epoch);
    }
    head_.store(head, std::memory_order_release);
    for (const Change& change : replay) {
      ApplyLocked(change, now);
      history_.push_back(HistoryEntry{change, now});
    }
    TrimHistoryLocked(now);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  if (listener_) listener_();
}

Revision CredentialState::history_first() const {
  std::shared_lock lock(mu_);
  return history_.empty() ? head() + 1 : history_.front().change.revision;
}

StateStats CredentialState::stats() const {
  std::shared_lock lock(mu_);
  StateStats s;
  s.live = live_.size();
  s.secrets = secrets_.size();
  s.tombstones = tombstones_.size();
  s.history_events = history_.size();
  s.head = head();
  s.history_first = history_.empty() ? s.head + 1 : history_.front().change.revision;
  return s;
}

RecordRef CredentialState::FindLocked(std::string_view realm, std::string_view username,
                                      int64_t now) const {
  auto it = live_.find(Key{realm, username});
  if (it == live_.end() || !Live(**it, now)) return RecordRef();
  return *it;
}

RecordRef CredentialState::Find(std::string_view realm, std::string_view username) const {
  int64_t now = clock_->NowMs();
  std::shared_lock lock(mu_);
  return FindLocked(realm, username, now);
}

std::vector<RecordRef> CredentialState::InAnyRealmLocked(std::string_view username,
                                                         int64_t now) const {
  std::vector<RecordRef> out;
  CollectLocked(by_username_, &Record::username, username, now, &out);
  std::sort(out.begin(), out.end(),
            [](const RecordRef& a, const RecordRef& b) { return a->realm() < b->realm(); });
  return out;
}

void CredentialState::CollectLocked(const absl::btree_set<Subscriber>& index,
                                    std::string_view (Record::*field)() const, std::string_view key,
                                    int64_t now, std::vector<RecordRef>* out) const {
  const uint64_t h = SubscriberHash(key);
  for (auto it = index.lower_bound(Subscriber{h, nullptr}); it != index.end() && it->first == h;
       ++it) {
    const Record* r = it->second;
    if ((r->*field)() == key && Live(*r, now)) out->push_back(RecordRef::Share(r));
  }
}

RecordRef CredentialState::FindInAnyRealm(std::string_view username) const {
  int64_t now = clock_->NowMs();
  std::shared_lock lock(mu_);
  std::vector<RecordRef> all = InAnyRealmLocked(username, now);
  return all.empty() ? RecordRef() : all.front();
}

bool CredentialState::IsRevoked(std::string_view realm, std::string_view username) const {
  int64_t now = clock_->NowMs();
  std::shared_lock lock(mu_);
  for (uint64_t key : {TombstoneKey(realm, username), TombstoneKey("", username)}) {
    auto it = tombstones_.find(key);
    if (it != tombstones_.end() && it->second.until > now) return true;
  }
  return false;
}

std::vector<RecordRef> CredentialState::Matching(const v1::Selector& selector) const {
  int64_t now = clock_->NowMs();
  std::vector<RecordRef> out;
  std::shared_lock lock(mu_);
  switch (selector.by_case()) {
    case v1::Selector::kUsername: {
      const auto& ref = selector.username();
      if (!ref.realm().empty()) {
        if (RecordRef r = FindLocked(ref.realm(), ref.username(), now)) out.push_back(std::move(r));
      } else {
        out = InAnyRealmLocked(ref.username(), now);
      }
      break;
    }
    case v1::Selector::kSubscriber:
      CollectLocked(by_subscriber_, &Record::subscriber, selector.subscriber(), now, &out);
      break;
    case v1::Selector::kIssuer:
      CollectLocked(by_issuer_, &Record::issuer, selector.issuer(), now, &out);
      break;
    case v1::Selector::BY_NOT_SET:
      break;
  }
  return out;
}

Revision CredentialState::VisitLive(Revision after, size_t max_examined,
                                    const std::function<bool(const Record&)>& visit) const {
  int64_t now = clock_->NowMs();
  std::shared_lock lock(mu_);
  size_t examined = 0;
  for (auto it = by_revision_.upper_bound(after); it != by_revision_.end(); ++it) {
    if (examined++ == max_examined) return it->first - 1;
    const Record& r = *it->second;
    if (!Live(r, now)) continue;
    if (!visit(r)) return it->first - 1;
  }
  return 0;
}

bool CredentialState::VisitTombstones(
    std::optional<uint64_t>* cursor, size_t max,
    const std::function<bool(std::string_view, std::string_view, int64_t)>& visit) const {
  int64_t now = clock_->NowMs();
  std::shared_lock lock(mu_);
  auto it = cursor->has_value() ? tombstones_.upper_bound(**cursor) : tombstones_.begin();
  for (size_t n = 0; it != tombstones_.end(); ++it) {
    if (it->second.until <= now) continue;
    if (n++ == max || !visit(it->second.realm, it->second.username, it->second.until)) return false;
    *cursor = it->first;
  }
  return true;
}

Revision CredentialState::Scan(Revision after, size_t max, size_t max_examined,
                               const std::function<bool(const Record&)>& keep,
                               std::vector<RecordRef>* out) const {
  size_t taken = 0;
  return VisitLive(after, max_examined, [&](const Record& r) {
    if (keep && !keep(r)) return true;
    if (taken == max) return false;
    out->push_back(RecordRef::Share(&r));
    ++taken;
    return true;
  });
}

SecretEntryRef CredentialState::FindSecret(std::string_view realm, std::string_view id) const {
  std::shared_lock lock(mu_);
  auto it = secrets_.find(std::pair<std::string, std::string>(realm, id));
  return it == secrets_.end() ? nullptr : it->second;
}

std::vector<SecretEntryRef> CredentialState::Secrets(std::string_view realm) const {
  std::vector<SecretEntryRef> out;
  std::shared_lock lock(mu_);
  for (const auto& [key, entry] : secrets_) {
    if (realm.empty() || key.first == realm) out.push_back(entry);
  }
  return out;
}

std::vector<std::string> CredentialState::RealmsWithSecret(std::string_view id,
                                                           std::string_view except) const {
  std::vector<std::string> out;
  std::shared_lock lock(mu_);
  for (const auto& [key, entry] : secrets_) {
    if (key.second == id && key.first != except) out.push_back(key.first);
  }
  return out;
}

CredentialState::HistoryRead CredentialState::VisitHistory(
    Revision after, const std::function<bool(const Change&)>& visit) const {
  std::shared_lock lock(mu_);
  Revision head = this->head();
  if (after >= head) return HistoryRead::kOk;
  if (history_.empty() || after + 1 < history_.front().change.revision)
    return HistoryRead::kCompacted;
  for (size_t i = after + 1 - history_.front().change.revision; i < history_.size(); ++i) {
    if (!visit(history_[i].change)) break;
  }
  return HistoryRead::kOk;
}

CredentialState::HistoryRead CredentialState::ReadHistory(Revision after, size_t max,
                                                          std::vector<Change>* out) const {
  return VisitHistory(after, [&](const Change& c) {
    if (max == 0) return false;
    --max;
    out->push_back(c);
    return true;
  });
}

void CredentialState::InsertLocked(const RecordRef& record) {
  const Record* r = record.get();
  live_.insert(record);
  by_revision_.emplace(r->revision(), r);
  by_expiry_.emplace(r->expires_at_ms(), r);
  if (!r->subscriber().empty()) by_subscriber_.emplace(SubscriberHash(r->subscriber()), r);
  if (!r->issuer().empty()) by_issuer_.emplace(SubscriberHash(r->issuer()), r);
  by_username_.emplace(SubscriberHash(r->username()), r);
}

void CredentialState::RemoveLocked(const Record* r) {
  by_revision_.erase(r->revision());
  by_expiry_.erase(Expiry{r->expires_at_ms(), r});
  if (!r->subscriber().empty())
    by_subscriber_.erase(Subscriber{SubscriberHash(r->subscriber()), r});
  if (!r->issuer().empty()) by_issuer_.erase(Subscriber{SubscriberHash(r->issuer()), r});
  by_username_.erase(Subscriber{SubscriberHash(r->username()), r});
  dead_.push_back(r->revision());
  // Last: the set holds the reference that keeps `r` alive.
  live_.erase(Key{r->realm(), r->username()});
}

void CredentialState::AddTombstoneLocked(std::string_view realm, std::string_view username,
                                         int64_t until) {
  Revoked& t = tombstones_[TombstoneKey(realm, username)];
  if (until <= t.until) return;
  t.until = until;
  if (t.username != username || t.realm != realm) {
    t.realm = std::string(realm);
    t.username = std::string(username);
  }
}

void CredentialState::ApplyLocked(const Change& change, int64_t now) {
  if (change.put) {
    auto it = live_.find(Key{change.put->realm(), change.put->username()});
    if (it == live_.end()) {
      InsertLocked(change.put);
    } else if ((*it)->revision() < change.revision) {
      RemoveLocked(it->get());
      InsertLocked(change.put);
    }  // else: a later record is live already (replayed over a Replace)
  } else if (change.revoke) {
    const v1::Revocation& rev = change.revoke->revocation;
    int64_t last_until = 0;
    for (const auto& ref : rev.credentials()) {
      auto it = live_.find(Key{ref.realm(), ref.username()});
      if (it != live_.end() && (*it)->revision() < change.revision) RemoveLocked(it->get());
      AddTombstoneLocked(ref.realm(), ref.username(), ref.expires_at_ms());
      last_until = std::max(last_until, ref.expires_at_ms());
    }
    if (rev.credentials().empty() && rev.selector().has_username()) {
      // Nothing live matched: the username may still be live on a TURN side
      // from before an epoch change; keep it revoked as long as anything
      // published before could live.
      int64_t until = rev.revoked_at_ms() + options_.max_ttl_ms;
      AddTombstoneLocked(rev.selector().username().realm(), rev.selector().username().username(),
                         until);
      last_until = until;
    }
    revocation_deaths_.emplace(last_until, change.revision);
  } else if (change.secret) {
    ApplySecretLocked(change, now);
  }
  head_.store(change.revision, std::memory_order_release);
}

void CredentialState::DropSecretLocked(const std::pair<std::string, std::string>& key) {
  auto it = secrets_.find(key);
  if (it == secrets_.end()) return;
  dead_.insert(dead_.end(), it->second->rows.begin(), it->second->rows.end());
  secrets_.erase(it);
}

void CredentialState::ApplySecretLocked(const Change& change, int64_t now) {
  const SecretChange& sc = *change.secret;
  std::pair<std::string, std::string> key(sc.secret.realm(), sc.secret.id());
  auto it = secrets_.find(key);
  // A later state is known already (a log replayed over a Replace).
  if (it != secrets_.end() && it->second->revision >= change.revision) return;
  if (sc.retired) {
    if (it == secrets_.end()) {
      // Nothing of it remains to be replayed: the row can go.
      dead_.push_back(change.revision);
      return;
    }
    DropSecretLocked(key);
    // Its other rows are dead now; the retirement row goes only once they
    // have surely been compacted, so no replay ever meets them without it.
    revocation_deaths_.emplace(now + options_.history_max_age_ms, change.revision);
    return;
  }
  if (sc.secret.expires_at_ms() != 0 && sc.secret.expires_at_ms() <= now) {
    // Expired (e.g. while the broker was down): as if retired.
    DropSecretLocked(key);
    dead_.push_back(change.revision);
    return;
  }
  auto entry = std::make_shared<SecretEntry>();
  entry->last = change.secret;
  entry->revision = change.revision;
  if (it != secrets_.end()) {
    entry->staged_revision = it->second->staged_revision;
    entry->rows = it->second->rows;
  } else {
    entry->staged_revision = sc.staged_revision != 0 ? sc.staged_revision : change.revision;
  }
  entry->rows.push_back(change.revision);
  secrets_[key] = std::move(entry);
}

void CredentialState::Apply(const std::vector<Change>& changes) {
  if (changes.empty()) return;
  int64_t now = clock_->NowMs();
  {
    std::unique_lock lock(mu_);
    for (const Change& change : changes) {
      ApplyLocked(change, now);
      history_.push_back(HistoryEntry{change, now});
    }
    TrimHistoryLocked(now);
  }
  if (listener_) listener_();
}

void CredentialState::Recover(const Change& change, int64_t at_ms, bool in_history) {
  int64_t now = clock_->NowMs();
  std::unique_lock lock(mu_);
  if (change.put && !Live(*change.put, now)) {
    // Expired while the broker was down: only the superseded record, if any,
    // must go.
    auto it = live_.find(Key{change.put->realm(), change.put->username()});
    if (it != live_.end()) RemoveLocked(it->get());
    dead_.push_back(change.revision);
    head_.store(change.revision, std::memory_order_release);
  } else {
    ApplyLocked(change, now);
  }
  if (in_history) {
    history_.push_back(HistoryEntry{change, at_ms});
    if (history_.size() > options_.history_max_events) history_.pop_front();
  }
}

size_t CredentialState::Expire(size_t max) {
  int64_t now = clock_->NowMs();
  std::unique_lock lock(mu_);
  size_t removed = 0;
  while (removed < max && !by_expiry_.empty() && by_expiry_.begin()->first <= now) {
    RemoveLocked(by_expiry_.begin()->second);
    ++removed;
  }
  while (!revocation_deaths_.empty() && revocation_deaths_.begin()->first <= now) {
    dead_.push_back(revocation_deaths_.begin()->second);
    revocation_deaths_.erase(revocation_deaths_.begin());
  }
  // (A btree's erase invalidates its iterators: collect first.)
  std::vector<std::pair<std::string, std::string>> expired_secrets;
  for (const auto& [key, entry] : secrets_) {
    int64_t expires = entry->secret().expires_at_ms();
    if (expires != 0 && expires <= now) expired_secrets.push_back(key);
  }
  for (const auto& key : expired_secrets) DropSecretLocked(key);
  if (now >= next_tombstone_sweep_ms_) {
    absl::erase_if(tombstones_, [now](const auto& t) { return t.second.until <= now; });
    next_tombstone_sweep_ms_ = now + kTombstoneSweepIntervalMs;
  }
  TrimHistoryLocked(now);
  return removed;
}

void CredentialState::TrimHistoryLocked(int64_t now) {
  while (!history_.empty() && (history_.size() > options_.history_max_events ||
                               history_.front().at_ms < now - options_.history_max_age_ms)) {
    history_.pop_front();
  }
}

std::vector<Revision> CredentialState::TakeDeadRevisions() {
  std::unique_lock lock(mu_);
  return std::exchange(dead_, {});
}

void CredentialState::SetCommitListener(std::function<void()> listener) {
  listener_ = std::move(listener);
}

}  // namespace turnbroker::broker
