// The markers the SDK records (MarkerRecorded events) and their details
// keys. Part of the history format: recorded histories replay against
// these names, so they never change.
#pragma once

namespace duro::sdk {

// side_effect(): details {"data": the value's payload}.
inline constexpr const char* kSideEffectMarkerName = "SideEffect";
inline constexpr const char* kSideEffectDataKey = "data";

// patched() / deprecate_patch(): details {"patch_id": id, "deprecated": "0" | "1"}.
inline constexpr const char* kPatchMarkerName = "Patch";
inline constexpr const char* kPatchIdKey = "patch_id";
inline constexpr const char* kPatchDeprecatedKey = "deprecated";

}  // namespace duro::sdk
