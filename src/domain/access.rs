//! Who may see and do what, and the applicant's credential for one loan: derived, never stored. A token is the loan's id,
//! the loan's token generation (an operator's revocation moves it on) and an HMAC-SHA256 of
//! both under a server secret, so any node that knows the secret can check it, and a replayed
//! submission or a notification link can make the same token again.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::hex;
use super::ids::LoanId;

/// Who may see and do what (CONTRACT.md, "People and access").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// One loan: its own.
    Applicant,
    /// Reviews, decides, asks for information.
    Underwriter,
    /// Every `GET` but `/admin/*`; changes nothing.
    Viewer,
    /// Everything, `/admin/*` included, but acting as the applicant.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Applicant => "applicant",
            Role::Underwriter => "underwriter",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }

    /// The roles a staff token may have (an applicant's comes with its loan).
    pub fn parse_staff(text: &str) -> Option<Role> {
        [Role::Underwriter, Role::Viewer, Role::Operator].into_iter().find(|role| role.as_str() == text.trim())
    }
}

/// The server secret applicant tokens are made with (at least 32 bytes).
#[derive(Clone)]
pub struct TokenKey(Vec<u8>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

/// What an applicant token says, once its MAC is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplicantGrant {
    pub loan_id: LoanId,
    pub generation: u32,
}

/// Marks an applicant token (the version of its form).
const PREFIX: &str = "lfa1";

impl TokenKey {
    pub fn new(secret: Vec<u8>) -> Result<Self, String> {
        if secret.len() < 32 {
            return Err(format!("a token key needs at least 32 bytes, got {}", secret.len()));
        }
        Ok(Self(secret))
    }

    /// The applicant token of `loan_id` at `generation`.
    pub fn applicant_token(&self, loan_id: LoanId, generation: u32) -> String {
        let mac = hex::encode(&self.mac(loan_id, generation));
        format!("{PREFIX}.{loan_id}.{generation}.{mac}")
    }

    /// The loan and generation a token grants, if it is one this key made (compared in constant
    /// time). Whether the generation is still the loan's is for the caller to check.
    pub fn verify(&self, token: &str) -> Option<ApplicantGrant> {
        let mut parts = token.trim().split('.');
        let (prefix, id, generation, mac) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if prefix != PREFIX || parts.next().is_some() {
            return None;
        }
        let loan_id = LoanId::parse(id).ok()?;
        let generation: u32 = generation.parse().ok()?;
        let presented = hex::decode(mac)?;
        let mut expected = self.keyed();
        expected.update(&message(loan_id, generation));
        expected.verify_slice(&presented).ok()?;
        Some(ApplicantGrant { loan_id, generation })
    }

    fn keyed(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length")
    }

    fn mac(&self, loan_id: LoanId, generation: u32) -> Vec<u8> {
        let mut mac = self.keyed();
        mac.update(&message(loan_id, generation));
        mac.finalize().into_bytes().to_vec()
    }
}

/// What the MAC covers: the purpose, the loan, the generation.
fn message(loan_id: LoanId, generation: u32) -> Vec<u8> {
    format!("applicant:{loan_id}:{generation}").into_bytes()
}

/// 32 random bytes as hex: a bearer token or secret nobody guesses.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> TokenKey {
        TokenKey::new(vec![byte; 32]).unwrap()
    }

    #[test]
    fn a_token_grants_its_loan_and_generation_under_its_key_only() {
        let loan = LoanId::generate();
        let token = key(1).applicant_token(loan, 0);
        assert_eq!(token, key(1).applicant_token(loan, 0), "derived: the same token every time");
        assert_eq!(key(1).verify(&token), Some(ApplicantGrant { loan_id: loan, generation: 0 }));
        assert_eq!(key(2).verify(&token), None, "another server secret");
        let next = key(1).applicant_token(loan, 1);
        assert_ne!(next, token);
        assert_eq!(key(1).verify(&next).map(|g| g.generation), Some(1));
    }

    #[test]
    fn a_token_changed_anywhere_is_refused() {
        let (loan, other) = (LoanId::generate(), LoanId::generate());
        let token = key(1).applicant_token(loan, 3);
        let mac = token.rsplit('.').next().unwrap();
        let refused = [
            token.replace(&loan.to_string(), &other.to_string()),
            token.replacen(".3.", ".4.", 1),
            format!("{}{}", &token[..token.len() - 1], if token.ends_with('0') { '1' } else { '0' }),
            token.replacen("lfa1", "lfa2", 1),
            format!("{token}.x"),
            format!("lfa1.{loan}.3"),
            format!("lfa1.{loan}.3.{}", &mac[..10]),
            String::new(),
            "Bearer".into(),
        ];
        for bad in refused {
            assert_eq!(key(1).verify(&bad), None, "{bad}");
        }
        assert!(TokenKey::new(vec![0; 16]).is_err(), "a short secret");
        assert_eq!(format!("{:?}", key(1)), "TokenKey(..)", "the secret never reaches a log");
    }
}
