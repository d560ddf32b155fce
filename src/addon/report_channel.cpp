#include "report_channel.hpp"

namespace ssefanout {

void ReportChannel::open(Napi::Env env, Napi::Function onReports, Dispatcher* dispatcher) {
  dispatcher_ = dispatcher;
  tsfn_ = Napi::ThreadSafeFunction::New(env, onReports, "sse-fanout", 0, 1);
  tsfn_.Unref(env);  // JS refs it while connections are open
  opened_ = true;
}

void ReportChannel::kill() {
  std::lock_guard<std::mutex> lock(mu_);
  dead_ = true;
  reports_.clear();
}

bool ReportChannel::release() {
  if (released_ || !opened_) return false;
  released_ = true;
  tsfn_.Release();
  return true;
}

void ReportChannel::ref(Napi::Env env) {
  if (!released_) tsfn_.Ref(env);
}

void ReportChannel::unref(Napi::Env env) {
  if (!released_) tsfn_.Unref(env);
}

// ---- shard threads -------------------------------------------------------

void ReportChannel::stage(Report&& r) { staged_[r.shard].push_back(std::move(r)); }

void ReportChannel::publishStaged(uint32_t shard) {
  std::vector<Report>& mine = staged_[shard];
  if (mine.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (dead_) {
    mine.clear();
    return;
  }
  for (Report& r : mine) reports_.push_back(std::move(r));
  mine.clear();
  if (!scheduled_) {
    scheduled_ = true;
    tsfn_.NonBlockingCall([this](Napi::Env env, Napi::Function cb) { dispatch(env, cb); });
  }
}

void ReportChannel::onDisconnect(uint32_t shard, uint64_t id, DisconnectReason reason) {
  Report r{Report::kDisconnect};
  r.shard = shard;
  r.id = id;
  r.reason = reason;
  stage(std::move(r));
}

void ReportChannel::onJsDeliver(uint32_t shard, FrameRef frame, std::vector<uint64_t> ids) {
  Report r{Report::kDeliver};
  r.shard = shard;
  r.frame = std::move(frame);
  r.ids = std::move(ids);
  stage(std::move(r));
}

void ReportChannel::onTurnEnd(uint32_t shard) { publishStaged(shard); }

void ReportChannel::onStopped(uint32_t shard) {
  Report r{Report::kStopped};
  r.shard = shard;
  stage(std::move(r));
  publishStaged(shard);
}

// ---- JS thread -------------------------------------------------------------

// Hands a batch of reports to JS as one flat array:
//   [0, id, reasonIndex] disconnect, [1, Buffer, ids[]] deliver an event,
//   [3, Buffer, ids[]] deliver other bytes (a heartbeat), [2, shard, 0] stopped.
void ReportChannel::dispatch(Napi::Env env, Napi::Function callback) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch_.swap(reports_);
    scheduled_ = false;
    if (dead_) batch_.clear();
  }
  if (batch_.empty() || env == nullptr) {
    batch_.clear();
    return;
  }
  Napi::HandleScope scope(env);
  Napi::Array out = Napi::Array::New(env, batch_.size() * 3);
  uint32_t k = 0;
  bool allStopped = false;
  for (Report& r : batch_) {
    const bool control = r.kind == Report::kDeliver && r.frame->kind() != Frame::Kind::kEvent;
    out.Set(k++, Napi::Number::New(env, control ? 3 : r.kind));
    switch (r.kind) {
      case Report::kDisconnect:
        dispatcher_->forget(r.id);
        out.Set(k++, Napi::Number::New(env, static_cast<double>(r.id)));
        out.Set(k++, Napi::Number::New(env, static_cast<double>(r.reason)));
        break;
      case Report::kDeliver: {
        Frame* f = r.frame.detach();
        // An external Buffer over the frame's own bytes: no copy; the
        // finalizer drops the reference when V8 collects the Buffer.
        auto buf = Napi::Buffer<char>::New(
            env, const_cast<char*>(f->data()), f->size(), [](Napi::Env, char*, Frame* frame) { frame->release(); }, f);
        Napi::Array ids = Napi::Array::New(env, r.ids.size());
        for (uint32_t i = 0; i < r.ids.size(); ++i) ids.Set(i, Napi::Number::New(env, static_cast<double>(r.ids[i])));
        out.Set(k++, buf);
        out.Set(k++, ids);
        break;
      }
      case Report::kStopped:
        out.Set(k++, Napi::Number::New(env, r.shard));
        out.Set(k++, Napi::Number::New(env, 0));
        if (++stopped_ == dispatcher_->shardCount()) allStopped = true;
        break;
    }
  }
  batch_.clear();
  if (allStopped) {
    dispatcher_->joinShards();
    // Every shard has reported its last word: nothing can call the tsfn now.
    release();
  }
  callback.Call({out});
}

}  // namespace ssefanout
