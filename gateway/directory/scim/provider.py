"""What the gateway's SCIM service announces and tolerates: the discovery documents
(ServiceProviderConfig, ResourceTypes, Schemas) and the library's service, adjusted.

The schemas are RFC 7643's User (with the enterprise extension) and Group, whole: an IdP
sends attributes the gateway does not keep (`name.familyName`, `locale`, `password`), and
refusing them would stop its pushes. What is kept is listed in docs/scim.md; the rest is
accepted and not stored. An attribute that no schema declares is refused (400).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    ETag,
    Filter,
    Patch,
    ResourceType,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
)
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService
from scim2_server.utils import load_default_resource_types, load_default_schemas

MAX_RESULTS = 200  # a page of a listing holds at most this many resources

# Microsoft Entra ID removes members with `value` lists and replaces
# `emails[type eq "work"].value` on users that have no work address yet; both are read as
# it means them. Every other setting is the strict reading of the RFCs.
POLICY = ScimPolicy(
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


def service_provider_config() -> ServiceProviderConfig:
    return ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[AuthenticationScheme(
            type=AuthenticationScheme.Type.oauthbearertoken,
            name="Bearer token",
            description="The token in the environment variable that directory.scim.token_env "
                        "names, sent as Authorization: Bearer <token>",
            primary=True,
        )],
    )


def provider() -> ScimProvider:
    """The User and Group resource types of RFC 7643, the enterprise extension on User."""
    types: list[ResourceType] = list(load_default_resource_types().values())
    return ScimProvider.from_discovery(load_default_schemas().values(), types,
                                       config=service_provider_config(), policy=POLICY)


class GatewayScimService(ScimService):
    """The library's protocol, with two changes.

    A PATCH answers 200 and the resource: RFC 7644 lets it answer 204, but Okta reads the
    answer's body. And a resource is published in place, its two kinds of reference (a
    group's members, a user's manager) made URLs directly: the storage builds a new object
    for every answer, so the library's deep copy and its walk over every attribute of the
    schemas (a third of a User's CPU time in bench/scim_push.py) are not needed.
    """

    def publish(self, base_url: str, resource: Any) -> Any:
        meta = resource.meta
        meta.location = self.resource_location(base_url, self.get_resource_type_of(resource),
                                               resource.id)
        if not self.etag_supported:
            meta.version = None
        for member in getattr(resource, "members", None) or ():
            if member.ref is not None:
                member.ref = self.reference_location(base_url, member.ref)
        extension = getattr(resource, "EnterpriseUser", None)
        manager = getattr(extension, "manager", None)
        if manager is not None and manager.ref is not None:
            manager.ref = self.reference_location(base_url, manager.ref)
        return resource

    def patch_response(self, base_url: str, resource: Any,
                       response_parameters: Any) -> ScimResponse:
        published = self.publish(base_url, resource)
        return self.resource_response(published, Context.RESOURCE_REPLACEMENT_RESPONSE,
                                      response_parameters, HTTPStatus.OK)


def build_service() -> GatewayScimService:
    return GatewayScimService(provider())
